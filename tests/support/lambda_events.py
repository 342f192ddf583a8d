"""What Lambda hands a handler: an SQS batch event and a context."""

from __future__ import annotations

from typing import Any


class Context:
    function_name = "dispatch"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:dispatch"
    aws_request_id = "req-1"


def sqs_batch(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{number}",
                "receiptHandle": "r",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:DispatchQueue",
                "awsRegion": "us-east-1",
            }
            for number, body in enumerate(bodies)
        ]
    }
