"""
SNS's own rules that both the service layer (at publish and subscribe time) and
the delivery engine (at send time) apply: filter policies, application events
and delivery-status records, the reserved mobile attributes. Neither of those
layers imports the other; both import this.
"""
