"""AWS Lambda adapter: Lambda events in, core's HTTP API out.

The function's handler is ``aws_lambda.handler.predict``; importing this package alone builds
nothing (the handler module is the init phase). Modules, one concern each:

    events.py      one class per HTTP source (API Gateway REST, HTTP API, Function URL, ALB):
                   recognises its events, reads them, shapes the reply
    warmup.py      serverless-plugin-warmup and EventBridge schedule warm-ups
    metrics.py     CloudWatch Embedded Metric Format, one line per invocation
    snapstart.py   SnapStart hooks (snapshot-restore-py, optional)
    app.py         LambdaApp: one invocation, start to answer
    handler.py     the entry point
"""
