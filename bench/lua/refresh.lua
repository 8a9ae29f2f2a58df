-- Refresh grants with rotation: each connection carries its own refresh-token chain and
-- keeps the rotated token it gets back; one operation = one POST /token.
-- Environment: BENCH_TOKENS_FILE (one refresh token per line, one per connection),
-- BENCH_TOKEN_PATH, BENCH_BASIC (client_secret_basic header value).
local bench = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local token_path = os.getenv("BENCH_TOKEN_PATH")
local basic = os.getenv("BENCH_BASIC")
local refresh_token

setup = bench.setup -- sets bench_slot: this connection's chain is line bench_slot

done = bench.done

function init(args)
  bench.publish()
  local n = 0
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    n = n + 1
    if n == bench_slot then refresh_token = line end
  end
  assert(refresh_token, "fewer refresh tokens than connections")
end

function delay()
  return bench.pace()
end

function request()
  bench.start_op()
  return wrk.format("POST", token_path, {
    ["Authorization"] = basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "grant_type=refresh_token&refresh_token=" .. bench.urlencode(refresh_token))
end

function response(status, headers, body)
  local rotated = status == 200 and bench.json_string(body, "refresh_token") or nil
  if rotated then
    refresh_token = rotated
    bench.finish_op()
  else
    -- The chain is broken (reuse detection revokes it): every later answer is an error too,
    -- which is what should fail the run.
    bench.error("refresh", status, body)
  end
end
