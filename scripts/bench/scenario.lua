-- wrk script for scripts/benchmark: one scenario, chosen by its first argument.
--
--   wrk -t1 -c16 -d10s --latency -s scripts/bench/scenario.lua URL -- SCENARIO KEY CARDS DEVICE ZONE_KEY_ID
--
-- SCENARIO: healthz | verify_match | verify_mismatch_unblock | token_set |
-- token_reveal | card_create | card_lookup | chip_scripts_none |
-- chip_scripts_change | atm_change. CARDS is the file scripts/bench/prepare.py
-- service writes (CARD MATCH_BLOCK MISMATCH_BLOCK SET_JWE PAN a line; chips.txt
-- beside it: CARD none|pending), DEVICE the device key.
--
-- chip_scripts_*: POST …/chip/scripts with a DE 55 of a random ARQC and ATC,
-- for chip cards with nothing pending (answer null) or with change_pin pending
-- (a whole PIN CHANGE script each time: its result is never reported).
-- atm_change: POST …/pin/change from the card's PIN to the other PIN of its
-- line, then back (the two blocks swap each time the card comes round).
--
-- Two-request scenarios: verify_mismatch_unblock sends a mismatching PIN block
-- for a card, and unblocks it 64 mismatches later (not at once: the answer
-- does not say which card it was for, and an unblock sent on another
-- connection while the mismatch is still in flight would make the two writes
-- wait on each other's row lock on PostgreSQL); token_set / token_reveal make a control token
-- for a card and, when its answer arrives, redeem it (the token is taken from
-- the answer, so the pair is one client flow). Cards are used round robin, so
-- with more cards than connections no token supersedes one still in flight.
--
-- Every answer whose status is not the scenario's expected one (or a verify
-- match that did not answer "match") is an error; the first few are printed.
-- done() prints one line `RESULT key=value …` that scripts/benchmark reads.
local scenario, cards, device, zone
local i, turn, shown = 0, 0, 0
-- A global, not a local: done() reads it from each thread with t:get().
errors = 0
local queue, qhead, qtail = {}, 1, 0
-- verify_mismatch_unblock: the cards sent a mismatch, oldest first, each
-- unblocked once UNBLOCK_LAG more have been sent one (by then its mismatch
-- has been answered: no connection has more than one request in flight).
local mismatched, mhead, mtail = {}, 1, 0
local UNBLOCK_LAG = 64
local threads = {}

-- BENCH_NODES="host:port,host:port": thread k connects to node k (round
-- robin), so with as many wrk threads as nodes each node gets its share.
-- BENCH_THREADS: how many threads there are; thread k takes every cards of
-- index k modulo that, so no two threads work on one card at once.
local nodes = {}
for hostport in (os.getenv("BENCH_NODES") or ""):gmatch("[^,]+") do
  nodes[#nodes + 1] = hostport
end

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("part", #threads - 1)
  if #nodes > 0 then
    local host, port = nodes[(#threads - 1) % #nodes + 1]:match("^(.+):(%d+)$")
    thread.addr = wrk.lookup(host, port)[1]
  end
end

local function read_cards(path)
  local out = {}
  for line in io.lines(path) do
    local card, match, mismatch, jwe, pan = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
    out[#out + 1] = { id = card, match = match, mismatch = mismatch, jwe = jwe, pan = pan }
  end
  return out
end

-- Chip cards of one state (`none` or `pending`) from chips.txt.
local function read_chips(path, state)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  f:close()
  for line in io.lines(path) do
    local card, s = line:match("^(%S+) (%S+)$")
    if s == state then out[#out + 1] = { id = card } end
  end
  return out
end

local hexdigits = "0123456789ABCDEF"
local function random_hex(n)
  local t = {}
  for k = 1, n do
    local d = math.random(1, 16)
    t[k] = hexdigits:sub(d, d)
  end
  return table.concat(t)
end

local flipped = {}
local checked_by_wrk = false

function init(args)
  scenario = args[1]
  checked_by_wrk = part == 0
  if scenario ~= "healthz" then
    wrk.headers["Authorization"] = "Bearer " .. args[2]
    wrk.headers["Content-Type"] = "application/json"
    cards = read_cards(args[3])
    if scenario == "chip_scripts_none" or scenario == "chip_scripts_change" then
      cards = read_chips(args[3]:gsub("cards%.txt$", "chips.txt"), scenario == "chip_scripts_none" and "none" or "pending")
    end
    local parts = tonumber(os.getenv("BENCH_THREADS") or "1")
    if parts > 1 then
      local mine = {}
      for j, card in ipairs(cards) do
        if (j - 1) % parts == part then mine[#mine + 1] = card end
      end
      cards = mine
    end
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
  -- wrk calls request() once in its first thread before the run, to check
  -- what it returns, and never sends that request: one that moved the
  -- scenario's state (a card's PIN in atm_change, the cards' order) would be
  -- counted as made. It gets a request that changes nothing.
  if checked_by_wrk then
    checked_by_wrk = false
    return wrk.format("GET", "/healthz")
  end
  if scenario == "healthz" then
    return wrk.format("GET", "/healthz")
  elseif scenario == "verify_match" then
    local card = next_card()
    return verify(card, card.match)
  elseif scenario == "verify_mismatch_unblock" then
    turn = turn + 1
    if turn % 2 == 0 and mtail - mhead + 1 > UNBLOCK_LAG then
      local card = mismatched[mhead]
      mismatched[mhead] = nil
      mhead = mhead + 1
      return wrk.format("POST", "/v1/cards/" .. card.id .. "/pin/unblock", nil,
        '{"description":"bench","updated_by":"bench"}')
    end
    local card = next_card()
    mtail = mtail + 1
    mismatched[mtail] = card
    return verify(card, card.mismatch)
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
  elseif scenario == "card_lookup" then
    return wrk.format("POST", "/v1/card-lookups", nil, '{"pan":"' .. next_card().pan .. '"}')
  elseif scenario == "chip_scripts_none" or scenario == "chip_scripts_change" then
    local de55 = "9F2608" .. random_hex(16) .. "9F3602" .. random_hex(4)
    return wrk.format("POST", "/v1/cards/" .. next_card().id .. "/chip/scripts", nil,
      '{"icc_data":"' .. de55 .. '"}')
  elseif scenario == "atm_change" then
    local card = next_card()
    local from, to = card.match, card.mismatch
    if flipped[card.id] then from, to = to, from end
    flipped[card.id] = not flipped[card.id]
    return wrk.format("POST", "/v1/cards/" .. card.id .. "/pin/change", nil,
      '{"pin_block":"' .. from .. '","new_pin_block":"' .. to .. '","format":"iso_4","zone_key_id":"' .. zone .. '"}')
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
  if scenario == "card_lookup" then return status == 200 end
  if scenario == "chip_scripts_none" then return status == 200 and body:find('"icc_response_data":null', 1, true) ~= nil end
  if scenario == "chip_scripts_change" then return status == 200 and body:find('"icc_response_data":"72', 1, true) ~= nil end
  if scenario == "atm_change" then return status == 200 and body:find('"result":"changed"', 1, true) ~= nil end
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
