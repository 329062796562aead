"""The seed's (001_…) Python client, as published, with only BASE_URL, API_KEY and API_SECRET set.

The seed's text lost its indentation in transcription; it is restored here and nothing else is
changed. :func:`run_seed_client` executes the seed's script part (its last three steps) with the given
values, so its prints are what a user of the seed would see.
"""
# ruff: noqa

SEED_CODE = '''
import requests
import hmac
import hashlib
import time
API_KEY = "nx_test_your_key_here"
API_SECRET = "your_secret_here"
BASE_URL = "https://api.next.exchange/v1/agent"
class NextExchangeAgent:
    def __init__(self, api_key, api_secret, base_url):
        self.api_key = api_key
        self.api_secret = api_secret
        self.base_url = base_url
    def _headers(self, method, path, body=""):
        timestamp = str(int(time.time() * 1000))
        payload = f"{timestamp}{method}{path}{body}"
        signature = hmac.new(
            self.api_secret.encode(),
            payload.encode(),
            hashlib.sha256
        ).hexdigest()
        return {
            "X-NX-Key": self.api_key,
            "X-NX-Signature": signature,
            "X-NX-Timestamp": timestamp,
            "Content-Type": "application/json"
        }
    def get_market_data(self, coins=None):
        """Fetch live market data for specified coins."""
        path = "/market"
        params = f"?coins={coins}" if coins else ""
        headers = self._headers("GET", path)
        resp = requests.get(
            f"{self.base_url}{path}{params}",
            headers=headers
        )
        return resp.json()
    def get_portfolio(self):
        """Read current portfolio positions."""
        path = "/portfolio"
        headers = self._headers("GET", path)
        resp = requests.get(
            f"{self.base_url}{path}",
            headers=headers
        )
        return resp.json()
    def place_order(self, symbol, side, order_type, quantity, price=None):
        """Place a trading order."""
        import json
        path = "/orders"
        body = json.dumps({
            "symbol": symbol,
            "side": side,
            "type": order_type,
            "quantity": quantity,
            "price": price
        })
        headers = self._headers("POST", path, body)
        resp = requests.post(
            f"{self.base_url}{path}",
            headers=headers,
            data=body
        )
        return resp.json()
# Initialize
agent = NextExchangeAgent(API_KEY, API_SECRET, BASE_URL)
# Get Bitcoin price
market = agent.get_market_data("bitcoin")
btc = market["data"][0]
print(f"BTC: ${btc['price']:,.2f} ({btc['change24h']:+.2f}%)")
# Check portfolio
portfolio = agent.get_portfolio()
print(f"Portfolio: ${portfolio['data']['totalValue']:,.2f}")
# Place a trade
order = agent.place_order("BTC", "buy", "market", 0.01)
print(f"Order {order['order']['orderId']}: {order['order']['status']}")
'''


def run_seed_client(base_url: str, api_key: str, api_secret: str) -> tuple[str, dict]:
    """Run the seed's code with the three values set; returns (what it printed, its globals)."""
    import contextlib
    import io

    code = (
        SEED_CODE.replace('"nx_test_your_key_here"', repr(api_key))
        .replace('"your_secret_here"', repr(api_secret))
        .replace('"https://api.next.exchange/v1/agent"', repr(base_url))
    )
    namespace: dict = {"__name__": "seed_client_run"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "seed_001_client", "exec"), namespace)
    return out.getvalue(), namespace
