//! AWS adapters of the relay ports: SQS sink and quarantine, DynamoDB dedupe and cursor, S3 claim check.
