#!/usr/bin/env python3
"""Verify one Standard Webhooks message with the independent `standardwebhooks` package (PyPI).

Usage: verify_webhook.py <whsec_secret> <webhook-id> <webhook-timestamp> <webhook-signature>  < body

Exit 0 and print "ok" when the signature verifies (the package also enforces its 5-minute timestamp
tolerance); exit 1 with the package's reason otherwise; exit 2 on bad usage. Used by tests/it/webhook_*.rs to
cross-check creditlink's signer against an implementation it shares no code with.
"""
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    secret, msg_id, timestamp, signature = sys.argv[1:]
    body = sys.stdin.buffer.read()
    headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError as e:
        print(f"verification failed: {e}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
