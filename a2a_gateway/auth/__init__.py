"""Identity and access: password hashing, access tokens, API keys, request signing, rate limits."""
