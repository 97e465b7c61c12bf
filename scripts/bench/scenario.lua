-- wrk script for scripts/benchmark: one scenario, chosen by its first argument.
--
--   wrk -t1 -c16 -d10s --latency -s scripts/bench/scenario.lua URL -- SCENARIO KEY CARDS DEVICE ZONE_KEY_ID
--
-- SCENARIO: healthz | verify_match | verify_mismatch_unblock | token_set |
-- token_reveal | card_create. CARDS is the file scripts/bench/prepare.py service
-- writes (CARD MATCH_BLOCK MISMATCH_BLOCK SET_JWE a line), DEVICE the device key.
--
-- Two-request scenarios: verify_mismatch_unblock sends a mismatching PIN block
-- for a card, then unblocks it; token_set / token_reveal make a control token
-- for a card and, when its answer arrives, redeem it (the token is taken from
-- the answer, so the pair is one client flow). Cards are used round robin, so
-- with more cards than connections no token supersedes one still in flight.
--
-- Every answer whose status is not the scenario's expected one (or a verify
-- match that did not answer "match") is an error; the first few are printed.
-- done() prints one line `RESULT key=value …` that scripts/benchmark reads.
local scenario, cards, device, zone
local i, turn, errors, shown = 0, 0, 0, 0
local queue, qhead, qtail = {}, 1, 0
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local function read_cards(path)
  local out = {}
  for line in io.lines(path) do
    local card, match, mismatch, jwe = line:match("^(%S+) (%S+) (%S+) (%S+)$")
    out[#out + 1] = { id = card, match = match, mismatch = mismatch, jwe = jwe }
  end
  return out
end

function init(args)
  scenario = args[1]
  if scenario ~= "healthz" then
    wrk.headers["Authorization"] = "Bearer " .. args[2]
    wrk.headers["Content-Type"] = "application/json"
    cards = read_cards(args[3])
    local f = io.open(args[4])
    device = f:read("*a")
    f:close()
    zone = args[5]
  end
end

local function next_card()
  i = i % #cards + 1
  return cards[i]
end


local function verify(card, block)
  return wrk.format("POST", "/v1/cards/" .. card.id .. "/pin/verify", nil,
    '{"pin_block":"' .. block .. '","format":"iso_4","zone_key_id":"' .. zone .. '"}')
end

function request()
  if scenario == "healthz" then
    return wrk.format("GET", "/healthz")
  elseif scenario == "verify_match" then
    local card = next_card()
    return verify(card, card.match)
  elseif scenario == "verify_mismatch_unblock" then
    turn = turn + 1
    if turn % 2 == 1 then
      return verify(next_card(), cards[i].mismatch)
    end
    return wrk.format("POST", "/v1/cards/" .. cards[i].id .. "/pin/unblock", nil,
      '{"description":"bench","updated_by":"bench"}')
  elseif scenario == "token_set" or scenario == "token_reveal" then
    if qhead <= qtail then
      local q = queue[qhead]
      queue[qhead] = nil
      qhead = qhead + 1
      if scenario == "token_set" then
        return wrk.format("PUT", "/v1/cards/" .. q.card .. "/pin", nil,
          '{"control_token":"' .. q.token .. '","encrypted_pin":"' .. q.jwe .. '"}')
      end
      return wrk.format("POST", "/v1/cards/" .. q.card .. "/pin/reveal", nil,
        '{"control_token":"' .. q.token .. '","device_key":' .. device .. '}')
    end
    local card = next_card()
    local body = scenario == "token_set" and '{"type":"set_pin"}'
      or '{"type":"reveal_pin","cardholder_verification_method":"OTP"}'
    return wrk.format("POST", "/v1/cards/" .. card.id .. "/control-tokens", nil, body)
  elseif scenario == "card_create" then
    return wrk.format("POST", "/v1/cards", nil, '{"pan":"4111111111111111"}')
  end
end

local jwe_of = {}

local function expected(status, body)
  if scenario == "healthz" then return status == 200 end
  if scenario == "verify_match" then return status == 200 and body:find('"result":"match"', 1, true) ~= nil end
  if scenario == "verify_mismatch_unblock" then return status == 200 or status == 204 end
  if scenario == "token_set" then return status == 201 or status == 204 end
  if scenario == "token_reveal" then return status == 201 or status == 200 end
  if scenario == "card_create" then return status == 201 end
  return false
end

function response(status, headers, body)
  if not expected(status, body) then
    errors = errors + 1
    if shown < 3 then
      shown = shown + 1
      io.stderr:write(scenario .. ": unexpected " .. status .. ": " .. (body or "") .. "\n")
    end
    return
  end
  if status == 201 and (scenario == "token_set" or scenario == "token_reveal") then
    local token = body:match('"token":"(pct_[^"]+)"')
    local card = body:match('"card_id":"([^"]+)"')
    if token and card then
      qtail = qtail + 1
      if scenario == "token_set" then
        if not jwe_of[card] then
          for _, c in ipairs(cards) do jwe_of[c.id] = c.jwe end
        end
      end
      queue[qtail] = { card = card, token = token, jwe = jwe_of[card] }
    end
  end
end

function done(summary, latency, requests)
  local unexpected = 0
  for _, t in ipairs(threads) do
    unexpected = unexpected + (t:get("errors") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d unexpected=%d non2xx_or_3xx=%d socket=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), unexpected, e.status, e.connect + e.read + e.write + e.timeout))
end
