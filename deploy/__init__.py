"""Infrastructure as code and the promotion of tested artifacts to AWS.

:mod:`deploy.stack` holds the one stack description that both the CDK app and the local world's
provisioning read.
"""
