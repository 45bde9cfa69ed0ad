"""boto3 and the AWS Encryption SDK for Python against a Trent server, unchanged but for the endpoint.

Run by tests/sdk_interop.rs with TRENT_ENDPOINT, AWS credentials and AWS_DEFAULT_REGION set; the
Encryption SDK's own KMS clients find Trent through botocore's AWS_ENDPOINT_URL_KMS. Prints one JSON
object of what it saw; any assertion failure exits non-zero with the reason on stderr.
"""

import json
import os

import boto3
import botocore.exceptions
import botocore.session

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError

endpoint = os.environ["TRENT_ENDPOINT"]
region = os.environ["AWS_DEFAULT_REGION"]
seen = {}

# boto3: keys, aliases, encryption context, errors, paginators.
kms = boto3.client("kms", endpoint_url=endpoint, region_name=region)
key = kms.create_key(Description="esdk interop")["KeyMetadata"]
arn = key["Arn"]
kms.create_alias(AliasName="alias/esdk-interop", TargetKeyId=key["KeyId"])
blob = kms.encrypt(
    KeyId="alias/esdk-interop", Plaintext=b"boto3 plaintext", EncryptionContext={"app": "boto3"}
)["CiphertextBlob"]
answer = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "boto3"})
assert answer["Plaintext"] == b"boto3 plaintext", answer
assert answer["KeyId"] == arn, answer
try:
    kms.decrypt(CiphertextBlob=blob)
    raise AssertionError("decrypt without the encryption context succeeded")
except botocore.exceptions.ClientError as e:
    seen["without_context"] = e.response["Error"]["Code"]
    seen["without_context_status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
try:
    kms.describe_key(KeyId="alias/does-not-exist")
    raise AssertionError("an unknown alias was described")
except kms.exceptions.NotFoundException as e:
    seen["unknown_alias"] = e.response["Error"]["Code"]
for _ in range(2):
    kms.create_key()
pages = kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1})
seen["paged_keys"] = sum(len(page["Keys"]) for page in pages)
data_key = kms.generate_data_key(KeyId=arn, KeySpec="AES_256")
seen["data_key_bytes"] = len(data_key["Plaintext"])

# The AWS Encryption SDK: a strict provider for the key ARN, one-shot and streaming, then a
# discovery provider that finds the key from the message alone.
client = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)
session = botocore.session.Session()
strict = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn], botocore_session=session)
message = b"an Encryption SDK message " * 4000
ciphertext, header = client.encrypt(
    source=message, key_provider=strict, encryption_context={"tenant": "a"}
)
plaintext, decrypted_header = client.decrypt(source=ciphertext, key_provider=strict)
assert plaintext == message
assert decrypted_header.encryption_context["tenant"] == "a"
seen["esdk_algorithm"] = header.algorithm.name
seen["esdk_encrypted_data_keys"] = [
    edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys
]
with client.stream(mode="e", source=message, key_provider=strict, frame_length=1024) as encryptor:
    streamed = encryptor.read()
discovery = aws_encryption_sdk.DiscoveryAwsKmsMasterKeyProvider(botocore_session=session)
with client.stream(mode="d", source=streamed, key_provider=discovery) as decryptor:
    assert decryptor.read() == message
seen["esdk_stream_round_trip"] = True

# A disabled key: the Encryption SDK cannot decrypt, as with AWS KMS.
kms.disable_key(KeyId=arn)
try:
    client.decrypt(source=ciphertext, key_provider=strict)
    raise AssertionError("a disabled key decrypted")
except AWSEncryptionSDKClientError as e:
    seen["esdk_disabled_key"] = type(e).__name__

print(json.dumps(seen))
