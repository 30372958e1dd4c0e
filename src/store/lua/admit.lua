-- Parley store decision script: check every limit and lease, then consume all or none.
-- KEYS[1] = op key (idempotency), then one key per spec, then one key per lease.
-- ARGV: mode ('admit' | 'acquire' | 'peek'), now ('' = Redis TIME), opId, holderId, ttlMs,
--       nSpecs, nLeases, then 4 per spec (kind 'w' | 'b' | 'd', a, b, cost), then 1 per lease (limit).
-- Reply: one string of comma-separated numbers, parsed by RedisStore:
--   allowed (1 | 0), retryAfterMs, refused index (1-based over specs then leases; 0 = none),
--   then remaining and resetMs of every spec, then of every lease ("inf" = infinity).
-- Names and limits are not sent back: the caller has them.
--
-- Idempotency: KEYS[1] holds "1" (allowed) or "0,retryAfterMs,index" (refused) for OP_MS. A replay
-- returns that outcome with the states as they are now (a peek), consuming nothing.
--
-- Cost matters here (every request decision runs it; bench/redis.ts measures it). Measured inside
-- Redis: a plain call ~0.5 µs, a sorted-set call on a large window 3-8 µs (skiplist walks), a new
-- key ~5 µs; the Lua around the calls (number parsing and formatting, tables) about as much as the
-- calls. So the common path makes few calls: TIME, one SET NX for the op record, 4 per window
-- (count, newest, add, TTL), 3 per bucket and 2 per daily counter; expired window entries are
-- trimmed once per quarter window rather than on every decision (the count excludes them anyway);
-- whole numbers are formatted with %d.
local DAY_MS = 86400000
local SLACK = 1e-9
-- ioredis resends an unanswered command right after a reconnect; 30 s covers that many times over.
local OP_MS = '30000'
local INF = math.huge

local mode = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local sfmt = string.format

-- A number as a string. Formatting a double (%.17g for redis.call, %.14g for `..`) is among the
-- dearest things this script does; most numbers here are whole ms, which %d writes cheaply.
-- %.17g keeps every bit of a double where it is not whole.
local function str(x)
  if x % 1 == 0 and x < 1e15 and x > -1e15 then return sfmt('%d', x) end
  if x ~= x or x == INF or x == -INF then return tostring(x) end
  return sfmt('%.17g', x)
end
local nowStr = str(now)

local opId = ARGV[3]
local holderId = ARGV[4]
local ttlMs = tonumber(ARGV[5])
local nSpecs = tonumber(ARGV[6])
local nLeases = tonumber(ARGV[7])
local ceil, floor = math.ceil, math.floor

-- A replay is decided as a peek with the stored outcome.
local replay = false
if mode == 'admit' and not redis.call('SET', KEYS[1], '1', 'NX', 'PX', OP_MS) then
  replay = redis.call('GET', KEYS[1])
  if replay == '1' then replay = '1,0,0' end
  mode = 'peek'
end
local peek = mode == 'peek'

local function excl(x) return '(' .. str(x) end

local function msUntilOut(t, windowMs)
  local e = t + windowMs
  local ms = ceil(e - now)
  if now + ms < e then ms = ms + 1 end
  if ms > 0 then return ms end
  return 0
end

-- Token bucket helpers (s.a = rate per second, s.b = burst).
local function tokensAt(s, t)
  local dt = t - s.last
  if not (dt > 0) then return s.tokens end
  local v = s.tokens + (dt * s.a) / 1000
  if v < s.b then return v end
  return s.b
end
local function refill(s)
  if now > s.last then
    s.tokens = tokensAt(s, now)
    s.last = now
  end
end
local function bMsUntil(s, cost)
  refill(s)
  if not (cost <= s.b) then return INF end
  local slack = s.b * SLACK
  if s.tokens + slack >= cost then return 0 end
  local behind = s.last - now
  local ms = ceil(behind + ((cost - s.tokens) * 1000) / s.a)
  if ms < 1 then ms = 1 end
  while tokensAt(s, now + ms) + slack < cost do ms = ms + 1 end
  while ms > 1 and tokensAt(s, now + ms - 1) + slack >= cost do ms = ms - 1 end
  return ms
end

-- Whether t and t0 fall in different quarters of `period` ms (when housekeeping is due).
local function newQuarter(t, t0, period)
  local q = period / 4
  if not (q >= 1) then q = 1 end
  return floor(t / q) ~= floor(t0 / q)
end

-- Load -----------------------------------------------------------------------------------------
local specs = {}
for i = 1, nSpecs do
  local b = 7 + (i - 1) * 4
  -- Every field named up front: adding one later would grow (rehash) the table.
  local s = {
    kind = ARGV[b + 1], a = tonumber(ARGV[b + 2]), b = tonumber(ARGV[b + 3]), cost = tonumber(ARGV[b + 4]), key = KEYS[1 + i],
    size = 0, newest = 0, tokens = 0, last = 0, used = 0, dkey = false, existed = false, trimmed = false,
  }
  specs[i] = s
  local key = s.key
  if s.kind == 'w' then
    -- s.a = limit, s.b = windowMs. Entries are scored by time; only the count in the window and the
    -- newest are loaded. The set may still hold expired entries (trimmed lazily, see Consume).
    s.size = redis.call('ZCOUNT', key, excl(now - s.b), '+inf')
    if s.size > 0 then
      s.newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    end
  elseif s.kind == 'b' then
    local v = redis.call('HMGET', key, 'tokens', 'last')
    if v[1] and v[2] then
      s.tokens = tonumber(v[1]); s.last = tonumber(v[2])
    else
      s.tokens = s.b; s.last = now
    end
  else
    s.dkey = key .. ':' .. sfmt('%d', floor(now / DAY_MS))
    local raw = redis.call('GET', s.dkey)
    s.existed = raw ~= false
    s.used = tonumber(raw or '0')
  end
end
local leases = {}
for i = 1, nLeases do
  local l = { limit = tonumber(ARGV[7 + nSpecs * 4 + i]), key = KEYS[1 + nSpecs + i], count = 0, present = false }
  leases[i] = l
  if peek then
    l.count = redis.call('ZCOUNT', l.key, excl(now), '+inf')
  else
    redis.call('ZREMRANGEBYSCORE', l.key, '-inf', now)
    l.count = redis.call('ZCARD', l.key) -- every holder left expires after now
  end
  local sc = redis.call('ZSCORE', l.key, holderId)
  l.present = sc and tonumber(sc) > now
end

-- Decide ---------------------------------------------------------------------------------------
local refused, retry = 0, 0
if mode == 'admit' then
  for i, s in ipairs(specs) do
    local wait = 0
    if s.kind == 'w' then
      local limit, size, off = s.a, s.size, 0
      -- Only the newest `limit` entries count.
      if size > limit then off = size - limit; size = limit end
      if size + s.cost > limit then
        if not (s.cost <= limit) then
          wait = INF
        else
          -- Ranks below count only once the expired entries are gone.
          redis.call('ZREMRANGEBYSCORE', s.key, '-inf', now - s.b)
          s.trimmed = true
          local rank = off + (size + s.cost - limit) - 1
          wait = msUntilOut(tonumber(redis.call('ZRANGE', s.key, rank, rank, 'WITHSCORES')[2]), s.b)
        end
      end
    elseif s.kind == 'b' then
      wait = bMsUntil(s, s.cost)
    elseif s.used + s.cost > s.a + 1e-9 then
      wait = DAY_MS - (now % DAY_MS)
    end
    if wait > 0 and (refused == 0 or wait > retry) then refused = i; retry = wait end
  end
  for i, l in ipairs(leases) do
    if not l.present and l.count >= l.limit and refused == 0 then refused = nSpecs + i; retry = 0 end
  end
elseif mode == 'acquire' then
  for i, l in ipairs(leases) do
    if not l.present and l.count >= l.limit and refused == 0 then refused = i end
  end
  if refused ~= 0 then
    local m = INF
    for _, l in ipairs(leases) do
      local first = redis.call('ZRANGEBYSCORE', l.key, excl(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      local e = 0
      if first[2] then e = tonumber(first[2]) - now end
      if e < m then m = e end
    end
    if m < 1000 then m = 1000 end
    retry = m
  end
end

-- Consume --------------------------------------------------------------------------------------
if refused == 0 and not peek then
  for _, s in ipairs(specs) do
    local key = s.key
    if s.kind == 'w' then
      local limit = s.a
      if limit ~= 0 and s.cost > 0 then
        local t = now
        if s.size > 0 and s.newest > t then t = s.newest end
        local n = s.cost
        if n > limit then n = limit end
        local suffix = ':' .. nowStr
        local ts = nowStr
        if t ~= now then ts = str(t) end
        if n == 1 then
          redis.call('ZADD', key, ts, opId .. ':1' .. suffix)
        elseif n >= 1 then
          local args = { key }
          for j = 1, n do
            args[#args + 1] = ts
            args[#args + 1] = opId .. ':' .. j .. suffix
          end
          redis.call('ZADD', unpack(args))
        end
        local added = 0
        if n >= 1 then added = floor(n) end
        if s.size + added > limit then redis.call('ZREMRANGEBYRANK', key, 0, -(limit + 1)) end
        -- Expired entries go once per quarter window (the count skips them meanwhile). The TTL is
        -- set on every write: a key last written by an older script has only window + 1 s left.
        if added > 0 and not s.trimmed and (s.size == 0 or newQuarter(t, s.newest, s.b)) then
          redis.call('ZREMRANGEBYSCORE', key, '-inf', now - s.b)
        end
        redis.call('PEXPIRE', key, ceil(s.b) + 1000)
        if added > 0 then s.newest = t end
        s.size = s.size + added
      end
    elseif s.kind == 'b' then
      refill(s)
      local cost = s.cost
      if cost <= s.b and s.tokens + s.b * SLACK >= cost then
        local left = s.tokens - cost
        if left > 0 then s.tokens = left else s.tokens = 0 end
        redis.call('HSET', key, 'tokens', str(s.tokens), 'last', str(s.last))
        redis.call('PEXPIRE', key, ceil((s.b * 1000) / s.a) + 1000)
      end
    else
      -- Added in Lua (a double, like MemoryStore) rather than INCRBYFLOAT (long double, and dearer).
      -- A day key is written for one day; the TTL from its first write outlives that day.
      s.used = s.used + s.cost
      if s.existed then
        redis.call('SET', s.dkey, str(s.used), 'KEEPTTL')
      else
        redis.call('SET', s.dkey, str(s.used), 'EX', '172800')
      end
    end
  end
  for _, l in ipairs(leases) do
    redis.call('ZADD', l.key, now + ttlMs, holderId)
    if not l.present then l.count = l.count + 1; l.present = true end
    local top = redis.call('ZRANGE', l.key, -1, -1, 'WITHSCORES')
    local maxExp = tonumber(top[2]) or (now + ttlMs)
    redis.call('PEXPIRE', l.key, math.max(1, ceil(maxExp - now)) + 1000)
  end
end

-- Reply ----------------------------------------------------------------------------------------
-- Numbers as `str` writes them; infinity reads "inf".
local parts = {}
if replay then
  parts[1] = replay
else
  if refused ~= 0 and mode == 'admit' then
    redis.call('SET', KEYS[1], '0,' .. str(retry) .. ',' .. refused, 'PX', OP_MS)
  end
  if refused == 0 then parts[1] = '1,0,0' else parts[1] = '0,' .. str(retry) .. ',' .. refused end
end
for i, s in ipairs(specs) do
  local remaining, reset
  if s.kind == 'w' then
    local size = s.size
    if size > s.a then size = s.a end
    reset = 0
    if size > 0 then reset = msUntilOut(s.newest, s.b) end
    remaining = s.a - size
  elseif s.kind == 'b' then
    refill(s)
    remaining, reset = floor(s.tokens), bMsUntil(s, s.b)
  else
    remaining = s.a - s.used
    if remaining < 0 then remaining = 0 end
    reset = DAY_MS - (now % DAY_MS)
  end
  parts[i + 1] = str(remaining) .. ',' .. str(reset)
end
for i, l in ipairs(leases) do
  local r = l.limit - l.count
  if r < 0 then r = 0 end
  parts[nSpecs + i + 1] = str(r) .. ',0'
end
return table.concat(parts, ',')
