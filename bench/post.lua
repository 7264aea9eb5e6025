-- wrk script: enqueue-only load, e.g. wrk -t2 -c32 -d5s -s bench/post.lua http://127.0.0.1:PORT/v1/jobs
wrk.method = "POST"
wrk.body   = '{"type":"bench","args":{"n":1}}'
wrk.headers["Content-Type"] = "application/json"
