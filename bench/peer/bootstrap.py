"""The Python peer of the cold-start benchmark: the webhook a user would write instead of the
relay, as such users write it (boto3's SQS client, Powertools idempotency on DynamoDB and its
Logger, xmltodict for tXML), run as a Lambda custom runtime: the usual short loop over the
Runtime API with urllib, lighter than awslambdaric, so the comparison favours the peer.

The job is the relay webhook's: check the Basic credential, parse the body (JSON, or tXML,
base64 or not), take an idempotency key from the object's id, version and last update, send the
message to SQS once per key, answer 202 (or 200 for a duplicate). Environment: QUEUE_URL,
IDEMPOTENCY_TABLE, WEBHOOK_BASIC ("user:password"), AWS_ENDPOINT_URL for moto.
"""

import base64
import hmac
import json
import os
import urllib.request

import boto3
import xmltodict
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

logger = Logger(service="tradecloud-webhook")
sqs = boto3.client("sqs")
QUEUE_URL = os.environ["QUEUE_URL"]
EXPECTED_AUTH = "Basic " + base64.b64encode(os.environ["WEBHOOK_BASIC"].encode()).decode()
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
idempotency = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=7 * 86400)


@idempotent_function(data_keyword_argument="message", persistence_store=persistence, config=idempotency)
def relay(message):
    sqs.send_message(
        QueueUrl=QUEUE_URL,
        MessageBody=message["body"],
        MessageAttributes={"dedupeKey": {"DataType": "String", "StringValue": message["key"]}},
    )
    return {"outcome": "enqueued", "dedupeKey": message["key"]}


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


@logger.inject_lambda_context
def handler(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if not hmac.compare_digest(headers.get("authorization", ""), EXPECTED_AUTH):
        return answer(401, {"error": "unauthorized"})
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    try:
        doc = xmltodict.parse(body) if body.lstrip().startswith("<") else json.loads(body)
    except Exception:
        logger.exception("unreadable body")
        return answer(400, {"error": "unreadable body"})
    root = next(iter(doc.values())) if body.lstrip().startswith("<") else doc
    obj = root.get("orderEvent") or root.get("shipmentEvent") or root.get("order") or root.get("shipment") or {}
    object_id = obj.get("orderId") or obj.get("id") or obj.get("shipmentId")
    if not object_id:
        return answer(400, {"error": "no object id"})
    key = f"{object_id}:{obj.get('version')}:{obj.get('lastUpdatedAt')}"
    result = relay(message={"key": key, "body": json.dumps(doc)})
    logger.info("relayed", extra={"dedupeKey": key, "outcome": result["outcome"]})
    return answer(202, result)


class Context:
    """What Powertools reads from Lambda's context object."""

    def __init__(self, headers):
        self.aws_request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "peer")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))

    def get_remaining_time_in_millis(self):
        import time

        return max(0, self._deadline_ms - int(time.time() * 1000))


def main():
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as response:
            request_headers = response.headers
            event = json.loads(response.read())
        context = Context(request_headers)
        idempotency.register_lambda_context(context)
        try:
            body, path = json.dumps(handler(event, context)).encode(), "response"
        except Exception as error:
            body, path = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode(), "error"
        url = f"{api}/invocation/{context.aws_request_id}/{path}"
        urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")).read()


if __name__ == "__main__":
    main()
