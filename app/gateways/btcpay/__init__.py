"""The BTCPay Server gateway module (see gateway.py)."""
from app.gateways.btcpay.gateway import BTCPayGateway

GATEWAY = BTCPayGateway
