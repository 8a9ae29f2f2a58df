-- Shared by the bench's wrk scripts (loaded with dofile from BENCH_LUA_DIR).
--
-- wrk runs one Lua state per thread and does not say which connection a response belongs
-- to, so every script is run with as many threads as connections (-t N -c N): one
-- connection per Lua state, and a per-state variable is a per-connection variable.
--
-- Each state times its own *operations* (several requests) with CLOCK_MONOTONIC through
-- LuaJIT's ffi, counts unexpected answers by "step:status", and done() writes the merged
-- numbers as JSON to BENCH_OUT for bench/run.py.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

local M = {}

function M.now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

function M.header(headers, name)
  -- Header names arrive as the server spelled them (Location, location).
  local wanted = name:lower()
  for k, v in pairs(headers) do
    if k:lower() == wanted then return v end
  end
  return nil
end

function M.urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function M.urldecode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.query_param(url, name)
  local value = url:match("[?&]" .. name .. "=([^&#]*)")
  return value and M.urldecode(value) or nil
end

function M.json_string(body, name)
  return body:match('"' .. name .. '"%s*:%s*"([^"]*)"')
end

-- Per-state bookkeeping -----------------------------------------------------------------
M.latencies = {}
M.errors = {}
M.ops = 0
M.error_count = 0
M.op_started = nil

function M.start_op()
  M.op_started = M.now_ms()
end

function M.finish_op()
  M.ops = M.ops + 1
  M.latencies[#M.latencies + 1] = M.now_ms() - M.op_started
  bench_ops = M.ops -- a number is copied, so it is published after each operation
end

function M.error(step, status, body)
  local key = step .. ":" .. tostring(status)
  M.errors[key] = (M.errors[key] or 0) + 1
  M.error_count = M.error_count + 1
  if M.error_count <= 3 then
    io.stderr:write(string.format("bench: unexpected %s answer %s: %s\n", step, tostring(status),
      (body or ""):sub(1, 300)))
  end
end

-- The main state: remember each thread so done() can collect its numbers.
local threads = {}

function M.setup(thread)
  threads[#threads + 1] = thread
  thread:set("bench_slot", #threads) -- this connection's number, 1..N
end

local function encode(value)
  local t = type(value)
  if t == "number" then return string.format("%.4f", value) end
  if t == "string" then return string.format("%q", value) end
  if t == "table" then
    local parts = {}
    if #value > 0 then
      for _, v in ipairs(value) do parts[#parts + 1] = encode(v) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, v in pairs(value) do parts[#parts + 1] = string.format("%q", k) .. ":" .. encode(v) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

function M.done(summary, latency, requests)
  local all, errors, ops = {}, {}, 0
  for _, thread in ipairs(threads) do
    ops = ops + (thread:get("bench_ops") or 0)
    for _, v in ipairs(thread:get("bench_latencies") or {}) do all[#all + 1] = v end
    for k, v in pairs(thread:get("bench_errors") or {}) do errors[k] = (errors[k] or 0) + v end
  end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  local out = {
    ops = ops, latencies_ms = all, errors = errors, socket_errors = socket_errors,
    requests = summary.requests, duration_us = summary.duration,
  }
  local path = os.getenv("BENCH_OUT")
  local fh = assert(io.open(path, "w"))
  fh:write(encode(out))
  fh:close()
end

-- Called from each script's init(): globals are where the main state's thread:get looks;
-- the tables are shared by reference, so later additions are seen too.
function M.publish()
  bench_ops = M.ops
  bench_latencies = M.latencies
  bench_errors = M.errors
end

-- Pacing for the "p99 at half the max rate" run: BENCH_OP_INTERVAL_MS is this
-- connection's time between operation starts (0: as fast as it can). Called from delay()
-- before the first request of an operation; a connection that falls behind starts the next
-- operation at once rather than bursting to catch up.
local interval = tonumber(os.getenv("BENCH_OP_INTERVAL_MS") or "0") or 0
local next_start = nil

function M.pace()
  if interval <= 0 then return 0 end
  local now = M.now_ms()
  if next_start == nil then
    -- Stagger the connections evenly over one interval: started together (math.random is
    -- seeded alike in every thread), they would queue behind each other on the server and
    -- the "unloaded" latency would be N operations long.
    local n = tonumber(os.getenv("BENCH_CONNECTIONS") or "1") or 1
    next_start = now + ((bench_slot or 1) - 1) / n * interval
  end
  local wait = next_start - now
  next_start = math.max(next_start, now) + interval
  if wait <= 0 then return 0 end
  return math.floor(wait)
end

return M
