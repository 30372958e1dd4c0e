-- Parley store decision script. One call decides a batch: the decisions one replica made in one
-- event-loop tick, grouped by hash tag. Each decision is atomic on its own (check every limit and
-- lease, then consume all or none); decisions on the same tag see each other in order.
--
-- Layout. The limits of one tag live in one hash (a group's key):
--   'S': every limit's state, one entry of 6 packed little-endian doubles each: the limit's id (a
--        number the client derives from its key), then
--          window: lo, hi, sum, cb, cc (cb = the newest bucket, cc its count); the older
--                  buckets' counts are in field '<id>#', a ring of span + 1 (bucket, count) pairs
--                  by bucket mod span + 1, written when a newer bucket starts; a pair whose bucket
--                  is not the one asked about counts 0;
--          bucket: tokens, last;  daily: day, used  (src/limits, the same steps);
--   '_x': the expiry last set on the hash (ms); 'r:<client>', 'r:<client>!': replay records (below).
-- Leases are sorted sets of holders scored by expiry (their own keys, same tag).
--
-- In: KEYS = the group hashes and lease keys (named by index). ARGV[1] = now ('' = Redis TIME),
--   ARGV[2] = client id, ARGV[3] = seq, ARGV[4] = every number of the batch as packed doubles:
--     groups; per group: hash key index, fields, decisions, whether any decision writes, then per
--     field: id, kind (1 window, 2 bucket, 3 daily), bucket ms and slots (0, 0 unless a window);
--     per decision: mode (1 admit, 2 acquire, 3 peek), ttlMs, specs, leases;
--     per spec: field index, a, b, cost; per lease: key index, limit
--   ARGV[5...] = the holder of each decision that has leases, in order.
-- Out: packed doubles: now, then per decision: allowed (1 | 0), retryAfterMs, refused index (1-based
--   over specs then leases, 0 = none), two numbers per spec (window: sum, hi; bucket: tokens, last;
--   daily: used, 0), one per lease (holders). The client derives remaining and reset from them.
--
-- Replays. ioredis resends an unanswered command after a reconnect. The client sends at most one
-- batch per tag at a time, with a rising seq, and each group records 'r:<client>' = seq, and when a
-- decision of it was refused, 'r:<client>!' = "seq|d:retryAfterMs,index/..." (the refused ones, by
-- position in the group). A batch whose seq is not above the record is a replay: nothing is
-- consumed, and each decision answers its recorded outcome with the states as they are now.
--
-- Cost (bench/redis.ts; measured in this Redis: a table 0.3 µs, struct.pack 0.45 µs, a Redis call
-- 1.2-1.9 µs). So the script reads its numbers with one struct.unpack and writes its reply with one
-- struct.pack, formats no number on the common path, and per group makes one HMGET, one unpack of
-- 'S', one pack of it and one HSET, plus a PEXPIRE when the hash needs a longer life; TIME once per
-- batch. A window reads its ring only when an older bucket leaves it or when it refuses, and writes
-- it when a newer bucket starts (about once a second for a busy minute window).
local DAY_MS = 86400000
local SLACK = 1e-9
local INF = math.huge
local floor, ceil, srep = math.floor, math.ceil, string.rep
local pack, unpack_ = struct.pack, struct.unpack

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = t[1] * 1000 + floor(t[2] / 1000)
end
local client = 'r:' .. ARGV[2]
local clientO = client .. '!'
local seq = tonumber(ARGV[3])
local blob = ARGV[4]
local V = { unpack_('<' .. srep('d', #blob / 8), blob) }
local today = floor(now / DAY_MS)

-- Window helpers. E = the group's entries; o = a window's offset in E (E[o] = id); f = its field
-- record { g, n, span, id, ring = the older buckets' (bucket, count) pairs once read, dirty }.
local function ringField(f) return string.format('%d', f.id) .. '#' end
-- The ring, read once per group when an older bucket is needed (it leaves the window, or a refusal).
local function ring(hkey, f)
  local r = f.ring
  if r then return r end
  local n2 = 2 * f.n
  local x = redis.call('HGET', hkey, ringField(f))
  if x and #x == 8 * n2 then
    r = { unpack_('<' .. srep('d', n2), x) }
    r[n2 + 1] = nil
  else
    r = {}
    for j = 1, n2, 2 do r[j], r[j + 1] = -1, 0 end
  end
  f.ring = r
  return r
end
local function count(hkey, E, o, f, b)
  if b == E[o + 4] then return E[o + 5] end
  local r = ring(hkey, f)
  local j = (b % f.n) * 2 + 1
  if r[j] == b then return r[j + 1] end
  return 0
end
local function wOut(f, b)
  local ms = (b + f.span + 1) * f.g - now
  if ms > 0 then return ms end
  return 0
end

-- Token buckets: a = rate per second, b = burst; tokens = E[o + 1], last = E[o + 2].
local function tokensAt(E, o, a, b, t)
  local dt = t - E[o + 2]
  if not (dt > 0) then return E[o + 1] end
  local x = E[o + 1] + (dt * a) / 1000
  if x < b then return x end
  return b
end
local function bUntil(E, o, a, b, cost)
  if not (cost <= b) then return INF end
  local slack = b * SLACK
  if E[o + 1] + slack >= cost then return 0 end
  local ms = ceil(E[o + 2] - now + ((cost - E[o + 1]) * 1000) / a)
  if ms < 1 then ms = 1 end
  while tokensAt(E, o, a, b, now + ms) + slack < cost do ms = ms + 1 end
  while ms > 1 and tokensAt(E, o, a, b, now + ms - 1) + slack >= cost do ms = ms - 1 end
  return ms
end

local R, nR = { now }, 1
local v, S = 2, 5
-- The group being decided (upvalues of field(), so it is one closure per call, not per group):
-- its hash, its entries E (nE numbers), where its field descriptions start in V (fv), and per
-- field i: off[i], the entry in E once loaded (and brought to now); F[i], a window's record.
local hkey, E, nE, fv
local off, F = {}, {}
local function field(i, a, b)
  local o = off[i]
  if o then return o end
  local q = fv + 4 * (i - 1)
  local id, kind = V[q], V[q + 1]
  for p = 1, nE, 6 do
    if E[p] == id then o = p; break end
  end
  if kind == 1 then
    local g, n = V[q + 2], V[q + 3]
    local f = { g = g, n = n, span = n - 1, id = id, ring = false, dirty = false }
    F[i] = f
    local cur = floor(now / g)
    local nlo = cur - f.span
    if not o then
      o = nE + 1
      E[o], E[o + 1], E[o + 2], E[o + 3], E[o + 4], E[o + 5] = id, nlo, -1, 0, -1, 0
      nE = nE + 6
    else
      local lo = E[o + 1]
      if nlo > lo then
        if nlo - lo >= n or E[o + 2] < nlo then
          -- Everything written has left: start empty.
          E[o + 3], E[o + 5] = 0, 0
        else
          local sum = E[o + 3]
          for bk = lo, nlo - 1 do
            local x = count(hkey, E, o, f, bk)
            if x ~= 0 then sum = sum - x end
          end
          E[o + 3] = sum
          if E[o + 4] < nlo then E[o + 5] = 0 end
        end
        E[o + 1] = nlo
      end
    end
  elseif kind == 2 then
    if not o then
      o = nE + 1
      E[o], E[o + 1], E[o + 2], E[o + 3], E[o + 4], E[o + 5] = id, b, now, 0, 0, 0
      nE = nE + 6
    elseif now > E[o + 2] then
      E[o + 1] = tokensAt(E, o, a, b, now)
      E[o + 2] = now
    end
  else
    if not o then
      o = nE + 1
      E[o], E[o + 1], E[o + 2], E[o + 3], E[o + 4], E[o + 5] = id, today, 0, 0, 0, 0
      nE = nE + 6
    elseif E[o + 1] ~= today then
      E[o + 1], E[o + 2] = today, 0
    end
  end
  off[i] = o
  return o
end

for _ = 1, V[1] do
  local nF, nD, hasW = V[v + 1], V[v + 2], V[v + 3] == 1
  hkey, fv = KEYS[V[v]], v + 4 -- field i: id V[fv + 4(i-1)], kind + 1, bucket ms + 2, slots + 3
  v = fv + 4 * nF
  for i = 1, nF do off[i], F[i] = false, false end
  local raw = redis.call('HMGET', hkey, client, clientO, '_x', 'S')
  local fmtE -- the format of the entries as read, reused for the write when their count is the same
  E, nE = {}, 0
  if raw[4] then
    nE = #raw[4] / 8
    fmtE = '<' .. srep('d', nE)
    E = { unpack_(fmtE, raw[4]) }
    E[nE + 1] = nil -- unpack's next position
  end
  local replayed = false
  if hasW and raw[1] and tonumber(raw[1]) >= seq then
    replayed = { known = tonumber(raw[1]) == seq }
    local rseq, rest = string.match(raw[2] or '', '^(%d+)|(.*)$')
    if replayed.known and rseq and tonumber(rseq) == seq then
      for d, r, i in string.gmatch(rest, '(%d+):([^,/]+),(%d+)') do replayed[tonumber(d)] = { tonumber(r), tonumber(i) } end
    end
  end
  local dirty, refusals = false, false
  local need = 60000 -- the replay record must outlive a reconnect
  for d = 1, nD do
    local mode, ttl, nS, nL = V[v], V[v + 1], V[v + 2], V[v + 3]
    local s0 = v + 4
    local sEnd = s0 + 4 * (nS - 1)
    v = s0 + 4 * nS + 2 * nL
    local peek = mode == 3 or replayed
    for p = s0, sEnd, 4 do field(V[p], V[p + 1], V[p + 2]) end
    local leases, holder = false, ''
    if nL > 0 then
      holder = ARGV[S]
      S = S + 1
      leases = {}
      local l0 = s0 + 4 * nS
      for i = 1, nL do
        local key = KEYS[V[l0 + 2 * i - 2]]
        local l = { key = key, limit = V[l0 + 2 * i - 1], count = 0, present = false }
        if peek then
          l.count = redis.call('ZCOUNT', key, '(' .. now, '+inf')
        else
          redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
          l.count = redis.call('ZCARD', key) -- every holder left expires after now
          local sc = redis.call('ZSCORE', key, holder)
          l.present = sc and tonumber(sc) > now
        end
        leases[i] = l
      end
    end
    -- Decide.
    local refused, retry = 0, 0
    if not peek then
      if mode == 1 then
        local i = 0
        for p = s0, sEnd, 4 do
          i = i + 1
          local fi, a, b, cost = V[p], V[p + 1], V[p + 2], V[p + 3]
          local o, kind, wait = off[fi], V[fv + 4 * (fi - 1) + 1], 0
          if kind == 1 then
            if E[o + 3] + cost > a then
              if not (cost <= a) then wait = INF
              else
                local f = F[fi]
                local lo, hi = E[o + 1], E[o + 2]
                local need2, freed = E[o + 3] + cost - a, 0
                wait = wOut(f, hi)
                for bk = lo, hi do
                  freed = freed + count(hkey, E, o, f, bk)
                  if freed >= need2 - 1e-9 then wait = wOut(f, bk); break end
                end
              end
            end
          elseif kind == 2 then
            if not (cost <= b and E[o + 1] + b * SLACK >= cost) then wait = bUntil(E, o, a, b, cost) end
          elseif E[o + 2] + cost > a + 1e-9 then
            wait = DAY_MS - now % DAY_MS
          end
          if wait > 0 and (refused == 0 or wait > retry) then refused = i; retry = wait end
        end
        if leases and refused == 0 then
          for i = 1, nL do
            local l = leases[i]
            if not l.present and l.count >= l.limit then refused = nS + i; break end
          end
        end
      else
        for i = 1, nL do
          local l = leases[i]
          if not l.present and l.count >= l.limit then refused = i; break end
        end
        if refused ~= 0 then
          local m = INF
          for i = 1, nL do
            local first = redis.call('ZRANGEBYSCORE', leases[i].key, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
            local e = 0
            if first[2] then e = tonumber(first[2]) - now end
            if e < m then m = e end
          end
          if m < 1000 then m = 1000 end
          retry = m
        end
      end
      -- Consume.
      if refused == 0 then
        for p = s0, sEnd, 4 do
          local fi, a, b, cost = V[p], V[p + 1], V[p + 2], V[p + 3]
          local o, kind = off[fi], V[fv + 4 * (fi - 1) + 1]
          if kind == 1 then
            if a ~= 0 and cost > 0 then
              local f = F[fi]
              -- The current bucket, unless the clock stepped back behind the newest.
              local bk = floor(now / f.g)
              if bk < E[o + 2] then bk = E[o + 2] end
              if bk < E[o + 1] then bk = E[o + 1] end
              if bk == E[o + 4] then
                E[o + 5] = E[o + 5] + cost
              else
                -- A newer bucket starts: the header's goes to its slot (if it still counts).
                if E[o + 5] ~= 0 and E[o + 4] >= E[o + 1] then
                  local r = ring(hkey, f)
                  local j = (E[o + 4] % f.n) * 2 + 1
                  r[j], r[j + 1] = E[o + 4], E[o + 5]
                  f.dirty = true
                end
                E[o + 4], E[o + 5] = bk, cost
              end
              E[o + 3] = E[o + 3] + cost
              E[o + 2] = bk
              dirty = true
              local life = b + f.g + 1000
              if life > need then need = life end
            end
          elseif kind == 2 then
            if cost <= b and E[o + 1] + b * SLACK >= cost then
              local left = E[o + 1] - cost
              if left > 0 then E[o + 1] = left else E[o + 1] = 0 end
              dirty = true
              local life = ceil((b * 1000) / a) + 1000
              if life > need then need = life end
            end
          else
            E[o + 2] = E[o + 2] + cost
            dirty = true
            if 2 * DAY_MS > need then need = 2 * DAY_MS end
          end
        end
        if leases then
          for i = 1, nL do
            local l = leases[i]
            redis.call('ZADD', l.key, now + ttl, holder)
            if not l.present then l.count = l.count + 1; l.present = true end
            local top = redis.call('ZRANGE', l.key, -1, -1, 'WITHSCORES')
            local maxExp = tonumber(top[2]) or (now + ttl)
            redis.call('PEXPIRE', l.key, math.max(1, ceil(maxExp - now)) + 1000)
          end
        end
      end
    end
    -- Reply: the outcome, then the numbers of every limit and lease.
    local ok, r1, r2 = 1, 0, 0
    if replayed then
      -- Recorded refused: its retry and index; not recorded: allowed (or a peek); unknown: refused.
      local rec = replayed[d]
      if rec then ok, r1, r2 = 0, rec[1], rec[2]
      elseif not replayed.known then ok = 0 end
    elseif refused ~= 0 then
      ok, r1, r2 = 0, retry, refused
      local e = d .. ':' .. string.format('%.17g', retry) .. ',' .. refused
      if refusals then refusals = refusals .. '/' .. e else refusals = e end
    end
    R[nR + 1], R[nR + 2], R[nR + 3] = ok, r1, r2
    nR = nR + 3
    for p = s0, sEnd, 4 do
      local fi = V[p]
      local o, kind = off[fi], V[fv + 4 * (fi - 1) + 1]
      if kind == 1 then R[nR + 1], R[nR + 2] = E[o + 3], E[o + 2]
      elseif kind == 2 then R[nR + 1], R[nR + 2] = E[o + 1], E[o + 2]
      else R[nR + 1], R[nR + 2] = E[o + 2], 0 end
      nR = nR + 2
    end
    if leases then
      for i = 1, nL do
        nR = nR + 1
        R[nR] = leases[i].count
      end
    end
  end
  -- Write back the states, bucket slots, the replay record; a longer life for the hash when needed.
  if hasW and not replayed then
    local x = tonumber(raw[3] or '0')
    local extend = now + need > x
    local packed = false
    if dirty then
      if not fmtE or #fmtE ~= nE + 1 then fmtE = '<' .. srep('d', nE) end
      packed = pack(fmtE, unpack(E, 1, nE))
    end
    local rings = false
    for i = 1, nF do
      if F[i] and F[i].dirty then rings = true end
    end
    if refusals or rings or extend then
      local w = { client, seq }
      if refusals then w[3], w[4] = clientO, seq .. '|' .. refusals end
      if packed then
        w[#w + 1] = 'S'
        w[#w + 1] = packed
      end
      for i = 1, nF do
        local f = F[i]
        if f and f.dirty then
          w[#w + 1] = ringField(f)
          w[#w + 1] = pack('<' .. srep('d', 2 * f.n), unpack(f.ring, 1, 2 * f.n))
        end
      end
      if extend then
        x = now + 2 * need
        w[#w + 1] = '_x'
        w[#w + 1] = x
      end
      redis.call('HSET', hkey, unpack(w))
      -- Relative, so an injected (test) clock works too.
      if extend then redis.call('PEXPIRE', hkey, 2 * need) end
    elseif packed then
      redis.call('HSET', hkey, client, seq, 'S', packed)
    else
      redis.call('HSET', hkey, client, seq)
    end
  end
end
return pack('<' .. srep('d', nR), unpack(R, 1, nR))
