-- One GCRA cell store shared by every gateway replica: KEYS[1] holds the theoretical arrival
-- time (TAT) in microseconds of Redis's own clock, so replicas' clocks never matter.
-- ARGV: interval_us, tolerance_us, count, age_us, strict ("1": admit one request or refuse),
-- floor_us (the replica's own view of how far ahead the TAT runs: a Redis that restarted
-- empty learns what the replicas know is used instead of granting a fresh burst).
-- Returns {admitted (0/1), lead_us}: how far ahead of now the TAT runs afterwards.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = now + tonumber(ARGV[6])
if tat < floor then tat = floor end
if ARGV[5] == '1' then
  if tat < now then tat = now end
  if tat - now > tolerance then
    return {0, math.floor(tat - now)}
  end
  count = 1
else
  -- A sync: `count` admissions that began `age_us` ago, on one replica.
  local since = now - tonumber(ARGV[4])
  if tat < since then tat = since end
end
if count > 0 then
  tat = tat + interval * count
  -- Admissions the replicas made before they saw each other's push the TAT past the burst:
  -- that is how the overshoot is paid back. At most a second's worth, so no report can lock
  -- a tenant out for long.
  local cap = now + tolerance + math.max(interval, 1000000)
  if tat > cap then tat = cap end
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
if tat < now then tat = now end
return {1, math.floor(tat - now)}
