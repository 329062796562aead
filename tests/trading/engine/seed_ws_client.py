# mypy: ignore-errors
# ruff: noqa
# fmt: off
"""The Python client of Nexgent's WebSocket docs ("WebSocket Examples", Python Example), verbatim.

It is the product's contract: the engine's ``/ws`` must serve it unchanged but for its URL and token.
Only this docstring and the three tool comments above are ours; the code below is copied as published
(the usage ``main()`` is left out).
"""

import asyncio
import json
import websockets
from datetime import datetime
 
class NexgentWebSocket:
    def __init__(self, api_url: str, token: str, agent_id: str):
        ws_url = api_url.replace('http', 'ws', 1)
        self.url = f"{ws_url}/ws?token={token}&agentId={agent_id}"
        self.positions = []
        self.is_connected = False
        
    async def connect(self):
        async with websockets.connect(self.url) as ws:
            self.ws = ws
            
            # Handle messages
            async for message in ws:
                await self.handle_message(json.loads(message))
                
    async def handle_message(self, message: dict):
        msg_type = message.get('type')
        data = message.get('data', {})
        
        if msg_type == 'connected':
            print(f"Connected to agent: {data.get('agentId')}")
            self.is_connected = True
            
        elif msg_type == 'initial_data':
            self.positions = data.get('positions', [])
            print(f"Received {len(self.positions)} positions")
            await self.on_positions_update(self.positions)
            
        elif msg_type == 'position_update':
            await self.handle_position_update(data)
            
        elif msg_type == 'price_update_batch':
            await self.handle_price_updates(data.get('updates', []))
            
        elif msg_type == 'ping':
            await self.ws.send(json.dumps({
                'type': 'pong',
                'timestamp': datetime.utcnow().isoformat() + 'Z'
            }))
            
        elif msg_type == 'error':
            print(f"Server error: {data.get('message')}")
            
    async def handle_position_update(self, data: dict):
        event_type = data.get('eventType')
        position = data.get('position')
        position_id = data.get('positionId')
        
        if event_type == 'position_created':
            self.positions.append(position)
        elif event_type == 'position_updated':
            for i, p in enumerate(self.positions):
                if p['id'] == position['id']:
                    self.positions[i] = {**p, **position}
                    break
        elif event_type == 'position_closed':
            self.positions = [p for p in self.positions if p['id'] != position_id]
            
        await self.on_positions_update(self.positions)
        
    async def handle_price_updates(self, updates: list):
        for update in updates:
            token_address = update['tokenAddress'].lower()
            for position in self.positions:
                if position['tokenAddress'].lower() == token_address:
                    position['currentPrice'] = update['price']
                    position['currentPriceUsd'] = update['priceUsd']
                    
        await self.on_positions_update(self.positions)
        
    async def on_positions_update(self, positions: list):
        """Override this method to handle position updates"""
        for p in positions:
            pnl = p.get('profitLossPercent', 0)
            print(f"  {p['tokenSymbol']}: {pnl:.2f}%")
