-- wrk script: POST /v1/cards/CARD/control-tokens {"type":"set_pin"} over and over
-- (each supersedes the previous): the cost of making a control token.
--   wrk ... -s scripts/bench/token.lua URL -- CARD KEY
function init(args)
  wrk.method = "POST"
  wrk.path = "/v1/cards/" .. args[1] .. "/control-tokens"
  wrk.body = '{"type":"set_pin"}'
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  io.write(string.format("unexpected answers: %d\n", summary.errors.status))
end
