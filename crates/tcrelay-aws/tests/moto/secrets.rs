//! Reading the functions' credentials from Secrets Manager (moto).

use aws_sdk_secretsmanager::primitives::Blob;
use tcrelay_aws::secrets::{SecretError, Secrets};
use tcrelay_aws::testing::{create_secret, moto_options, moto_url, unique_name};

#[tokio::test]
async fn reads_a_text_secret_and_names_the_secret_when_it_cannot() {
    let sdk = moto_options(&moto_url()).load().await;
    let admin = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = create_secret(
        &moto_url(),
        "webhook",
        r#"{"basic": ["tradecloud:s3cret"]}"#,
    )
    .await;
    let secrets = Secrets::new(&sdk);
    assert_eq!(
        secrets.read(&arn).await.unwrap(),
        r#"{"basic": ["tradecloud:s3cret"]}"#
    );

    let missing = format!("{arn}-gone");
    let err = secrets.read(&missing).await.unwrap_err();
    assert!(
        matches!(&err, SecretError::Read { arn, .. } if *arn == missing),
        "{err:?}"
    );

    let binary = admin
        .create_secret()
        .name(unique_name("binary"))
        .secret_binary(Blob::new(b"\x00\x01".to_vec()))
        .send()
        .await
        .expect("create binary secret")
        .arn
        .expect("arn");
    let err = secrets.read(&binary).await.unwrap_err();
    assert_eq!(
        err,
        SecretError::NotText {
            arn: binary.clone()
        }
    );
    // The value never appears in an error.
    assert!(!err.to_string().contains("s3cret"));
}
