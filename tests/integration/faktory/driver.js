// Drives jobq through the unmodified faktory-worker library (npm), for
// tests/integration/test_faktory.py. One command per run, as JSON in
// argv[2]; one JSON result on stdout. Every run is bounded in time.
"use strict";
const faktory = require("faktory-worker");

const cmd = JSON.parse(process.argv[2]);
const opts = { url: cmd.url, password: cmd.password, tlsOptions: cmd.tls };

function out(v) {
  process.stdout.write(JSON.stringify(v) + "\n");
}

async function withClient(fn) {
  const client = new faktory.Client(opts);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.close().catch(() => {});
  }
}

// A worker that runs until it has seen `until.count` jobs, `until.ms` have
// passed, or the server told it to terminate. behavior[jobtype]:
// "ok" | "fail" | "hang" | "sleep:<ms>".
async function work() {
  const seen = [];
  const behavior = cmd.behavior || {};
  let terminated = false;
  const registry = {};
  const handler = (type) => (...args) => async ({ job }) => {
    seen.push({ jid: job.jid, jobtype: job.jobtype, args, failure: job.failure || null,
                custom: job.custom || null, queue: job.queue, retry: job.retry });
    const b = behavior[type] || "ok";
    if (b === "fail") throw new Error(`boom ${job.jid}`);
    if (b === "hang") return new Promise(() => {});
    if (b.startsWith("sleep:")) await new Promise((r) => setTimeout(r, +b.slice(6)));
  };
  for (const t of cmd.types || Object.keys(behavior)) registry[t] = handler(t);
  const worker = new faktory.Worker({ ...opts, concurrency: cmd.concurrency || 1,
    queues: cmd.queues || ["default"], registry, wid: cmd.wid,
    beatInterval: cmd.beatInterval || 15, timeout: 1 });
  const stop = worker.stop.bind(worker);
  worker.stop = () => { terminated = true; return stop(); };
  worker.on("error", () => {});
  await worker.work();
  const until = cmd.until || {};
  const deadline = Date.now() + (until.ms || 20000);
  while (Date.now() < deadline && !terminated &&
         !(until.count && seen.length >= until.count) && !(until.quiet && worker.quieted)) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const quieted = !!worker.quieted;
  if (!terminated) await stop().catch(() => {});
  return { seen, quieted, terminated };
}

async function main() {
  switch (cmd.op) {
    case "push":
      return withClient(async (c) => {
        const jids = [];
        for (const j of cmd.jobs) jids.push(await c.push(j));
        return { jids };
      });
    case "pushb":
      return withClient(async (c) => ({ rejected: await c.pushBulk(cmd.jobs) }));
    case "info":
      return withClient(async (c) => ({ info: await c.info() }));
    case "send":
      return withClient(async (c) => ({ reply: await c.send(cmd.args) }));
    case "fetch":
      return withClient(async (c) => ({ job: await c.fetch(...cmd.queues) }));
    case "mutate":
      return withClient(async (c) => {
        let m = c[cmd.target];
        const f = cmd.filter || {};
        if (f.jids) m = m.withJids(f.jids);
        if (f.jobtype) m = m.ofType(f.jobtype);
        if (f.regexp) m = m.matching(f.regexp);
        return { reply: await m[cmd.cmd]() };
      });
    case "idle":  // n clients connected at once, each says INFO, then all close
      return (async () => {
        const clients = [];
        for (let i = 0; i < cmd.n; i++) {
          const c = new faktory.Client({ ...opts, poolSize: 1 });
          await c.connect();
          clients.push(c);
        }
        const infos = await Promise.all(clients.map((c) => c.info()));
        await Promise.all(clients.map((c) => c.close()));
        return { ok: infos.length };
      })();
    case "work":
      return work();
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const timer = setTimeout(() => { out({ error: "driver timed out" }); process.exit(3); },
                         cmd.timeout_ms || 60000);
main().then((v) => { clearTimeout(timer); out(v); process.exit(0); },
            (e) => { clearTimeout(timer); out({ error: e.message }); process.exit(0); });
