"""Analysis jobs at scale: Celery workers on a Redis or RabbitMQ broker.

The task is the same code the in-process pool runs (`analyze_sample`, then the service's
store step); the catalog is the result store, and its ``job`` table says what is queued,
running, failed and done. Tasks are acknowledged late and keyed by sha256 + analyzer
version, so a worker killed in the middle loses nothing and nothing is stored twice.
"""
