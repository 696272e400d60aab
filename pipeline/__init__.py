"""The production code of the Demand Forecasting & Planning pipeline.

Everything under this package is deployed to AWS as it is. It imports only itself: it never
knows whether it runs on AWS or inside the local harness.
"""
