-- wrk script: POST /subscribe with a unique address per request.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function request()
  n = n + 1
  local body = "email=reader-" .. tid .. "-" .. n .. "%40bench.example.com&name=Bench+Reader"
  return wrk.format("POST", "/subscribe", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
