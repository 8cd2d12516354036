"""The XML accounting export: dispatched orders as XML files delivered to where the customer's accounts package
collects them (issue 15)."""
