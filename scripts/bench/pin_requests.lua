-- wrk script: replays prepared requests, each line used once (a control token
-- is single use). Lines: METHOD PATH BODY (BODY without spaces).
--
--   wrk -t1 -c16 -d8s --latency -s scripts/bench/pin_requests.lua URL -- FILE KEY
--
-- Every answer other than the expected status counts as an error and is
-- printed at the end; the thread stops when the lines run out.
local lines, i, errors, expected = {}, 0, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    lines[#lines + 1] = line
  end
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
  expected = tonumber(args[3])
end

function request()
  i = i + 1
  local line = lines[i]
  if line == nil then
    wrk.thread:stop()
    line = lines[#lines]
  end
  local method, path, body = line:match("^(%S+) (%S+) (%S+)$")
  return wrk.format(method, path, nil, body)
end

function response(status, headers, body)
  if status ~= expected then
    errors = errors + 1
    if errors <= 3 then
      io.stderr:write("unexpected " .. status .. ": " .. body .. "\n")
    end
  end
end

function done(summary, latency, requests)
  io.write(string.format("unexpected answers: %d\n", summary.errors.status))
end
