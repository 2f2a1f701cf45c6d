"""The order engine: carts, pricing, checkout and the order lifecycle (WHMCS semantics).

Plain functions over models, no Flask request: the store, the admin, the APIs and the
tasks all call these.
"""
