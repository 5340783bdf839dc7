"""Load test of `interest-llm serve` through real HTTP over loopback.

Reports: events/s sustained through `POST /events` (batched: --batch events per request) and through
`POST /event` (one event per request), the latency p50/p99 of event posts and of
`GET /users/{user}/recommendations` with --users users in memory, memory per user, and restart time
(kill -9, then until /health answers, snapshot + replay).

    python scripts/bench_serve.py                      # 100k users, amazon-office run (trained if needed)
    python scripts/bench_serve.py --users 1000 --run runs/office
    python scripts/bench_serve.py --users 2000 --dataset simulated   # quick check, no shared data needed

Bounded: at most --max-seconds for loading the users, --requests requests per latency measurement.
"""
import argparse, http.client, json, os, shutil, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd

SERVE = [sys.executable, '-c', 'from interest_llm.serve import main; main()']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024
    return float('nan')


class Client:
    "One keep-alive HTTP connection; `request` returns (status, JSON) and records the latency."
    def __init__(self, port):
        self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        start = time.perf_counter()
        self.conn.request(method, path, body=data, headers={'content-type': 'application/json'})
        r = self.conn.getresponse()
        text = r.read()
        return r.status, json.loads(text), time.perf_counter() - start


def start_service(run, store, options, timeout=600):
    port = free_port()
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen(SERVE + [str(run), '--port', str(port), '--store', str(store)] + options,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start, deadline = time.perf_counter(), time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None: raise SystemExit(f"serve exited: {proc.stderr.read()}")
        try:
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=2)
            conn.request('GET', '/health')
            if conn.getresponse().status == 200: return proc, port, time.perf_counter() - start
        except OSError: time.sleep(0.05)
    raise SystemExit('serve did not start in time')


def quantiles_ms(seconds):
    return {f'p{q}': round(float(np.percentile(seconds, q)) * 1000, 2) for q in (50, 99)}


def make_run(args) -> Path:
    "The run folder to serve: --run, else a 1-epoch run of --dataset trained (once) into --work."
    if args.run: return Path(args.run)
    out = Path(args.work) / f'run-{args.dataset}'
    if not (out / 'config.json').exists():
        print(f"training a 1-epoch {args.dataset} run into {out} (once) ...", flush=True)
        cmd = [sys.executable, '-c', 'from interest_llm.cli import main; main()', 'train', '--dataset', args.dataset,
               '--epochs', '1', '--baselines', 'none', '--no-progress', '--out', str(out)]
        if args.dataset == 'simulated': cmd.append('--quick')
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def load_users(client, items, args, rng):
    "Post --events-per-user events for each of --users users in batches; returns (events, seconds, latencies)."
    latencies, posted, start = [], 0, time.perf_counter()
    users = np.arange(args.users)
    for round_ in range(args.events_per_user):
        for first in range(0, args.users, args.batch):
            chunk = users[first:first + args.batch]
            picks = items[rng.integers(0, len(items), len(chunk))]
            body = dict(events=[dict(user=f'u{u}', item=str(i), timestamp=1.6e9 + 60 * round_ + (u % 7))
                                for u, i in zip(chunk.tolist(), picks)])
            status, answer, seconds = client.request('POST', '/events', body)
            assert status == 200, answer
            latencies.append(seconds)
            posted += len(chunk)
            if time.perf_counter() - start > args.max_seconds:
                print(f"stopped loading after {args.max_seconds} s (--max-seconds)", flush=True)
                return posted, time.perf_counter() - start, latencies
    return posted, time.perf_counter() - start, latencies


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--run', help='run folder to serve (default: train a 1-epoch run of --dataset, once)')
    p.add_argument('--dataset', default=None, help='data set of the default run (default: amazon-office when '
                   '$INTEREST_LLM_DATA has it, else simulated)')
    p.add_argument('--users', type=int, default=100_000, help='users to hold in memory (default 100000)')
    p.add_argument('--events-per-user', type=int, default=1, help='events posted per user while loading (default 1)')
    p.add_argument('--batch', type=int, default=500, help='events per POST /events request (default 500)')
    p.add_argument('--requests', type=int, default=2000, help='requests per latency measurement (default 2000)')
    p.add_argument('--k', type=int, default=10, help='top-k asked for (default 10)')
    p.add_argument('--sync', choices=('full', 'normal'), default='full', help="the service's --sync (default full)")
    p.add_argument('--max-seconds', type=float, default=300, help='time bound of the loading phase (default 300)')
    p.add_argument('--work', default=os.path.join(tempfile.gettempdir(), 'interest_llm_bench_serve'),
                   help='folder for the default run and the stores')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', help='also write the results to this JSON file')
    args = p.parse_args(argv)
    data = Path(os.environ.get('INTEREST_LLM_DATA', '/nonexistent'))
    args.dataset = args.dataset or ('amazon-office' if (data / 'amazon-office-2014').is_dir() else 'simulated')
    Path(args.work).mkdir(parents=True, exist_ok=True)
    run = make_run(args)
    items = pd.read_csv(run / 'items.csv.gz', dtype={'item': str})['item'].to_numpy()
    store = Path(args.work) / f'bench-{os.getpid()}.sqlite'
    options = ['--sync', args.sync, '--snapshot-every', str(max(10_000, args.users)),
               '--max-batch', str(max(10_000, args.batch))]
    rng = np.random.default_rng(args.seed)
    proc, port, start_s = start_service(run, store, options)
    try: results = measure(proc, port, run, store, items, args, rng, options)
    finally:
        if proc.poll() is None: proc.send_signal(signal.SIGKILL)
    for path in store.parent.glob(store.name + '*'): path.unlink()
    results['command'] = 'python scripts/bench_serve.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(results, indent=1))
    if args.json: Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def measure(proc, port, run, store, items, args, rng, options) -> dict:
    client = Client(port)
    rss_before = rss_mb(proc.pid)
    posted, seconds, batch_lat = load_users(client, items, args, rng)
    rss_after, n_users = rss_mb(proc.pid), min(args.users, posted)
    print(f"loaded {posted} events for {n_users} users in {seconds:.1f} s: {posted / seconds:.0f} events/s "
          f"(batches of {args.batch})", flush=True)
    users = rng.integers(0, n_users, args.requests)
    one_lat = []
    for j, u in enumerate(users[:args.requests]):                     # one event per request
        item = str(items[rng.integers(len(items))])
        status, answer, s = client.request('POST', '/event', dict(user=f'u{u}', item=item, timestamp=1.7e9 + j))
        assert status == 200, answer
        one_lat.append(s)
    rec_lat = []
    for u in rng.integers(0, n_users, args.requests):
        status, answer, s = client.request('GET', f'/users/u{u}/recommendations?k={args.k}')
        assert status == 200 and answer['known'], answer
        rec_lat.append(s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc2, port2, restart_s = start_service(run, store, options)
    try:
        recovery = Client(port2).request('GET', '/version')[1]['recovery']
    finally:
        proc2.send_signal(signal.SIGKILL)
        proc2.wait()
    return dict(run=run.name, users=n_users, catalogue_items=len(items), sync=args.sync,
                events_per_s_batched=round(posted / seconds), batch_size=args.batch,
                batch_post_ms=quantiles_ms(batch_lat),
                events_per_s_single=round(len(one_lat) / sum(one_lat)), single_post_ms=quantiles_ms(one_lat),
                recommend_ms=quantiles_ms(rec_lat), k=args.k,
                memory_per_user_kb=round((rss_after - rss_before) * 1024 / max(n_users, 1), 2),
                restart_s=round(restart_s, 2), recovery=recovery)


if __name__ == '__main__':
    main()
