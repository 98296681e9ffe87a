-- wrk script of the benchmark: POSTs the file named by $BODY to the URL and
-- prints one machine-readable line at the end.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d "
      .. "errors=%d non2xx=%d\n",
      summary.requests, summary.duration, latency:percentile(50),
      latency:percentile(99),
      e.connect + e.read + e.write + e.timeout, e.status))
end
