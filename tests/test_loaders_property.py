"""Property test of the file loader (`load_table`, what `interest-llm train --interactions F --items G` reads): random
CSV files — random separator, encoding, id formats (leading zeros, float-looking, 'NA', quoted separators), time
formats (Unix seconds, epoch milliseconds, ISO with and without zones, day-first and month-first dates) and missing
values — either load to exactly the table that was written, or raise the package's own `DataError`. Never another
exception, never a changed id (but for the one documented rule: ids all written as integral floats, 12.0, are the
integers), a shifted time or a reordered sequence.

The expected table is the one the generator wrote, so the check does not depend on any parser.
"""
import contextlib, csv, datetime, io, tempfile, warnings
from pathlib import Path

import numpy as np, pandas as pd, pytest
import os
from hypothesis import given, settings, strategies as st, HealthCheck

from interest_llm.data import DataError
from interest_llm.datasets import load_table

SEPS = [',', ';', '\t', '|']
ENCODINGS = ['utf-8', 'latin-1', 'cp1252', 'utf-16']
IDS = ['007', '7', '12.0', '12', 'X99', 'NA', 'nan', 'null', 'TRUE', '0', '-3', '1e5', 'a b', 'caf\u00e9', 'x;y', 'p,q', 'q"t', 'a|b']
TEXT = st.text(alphabet='abc XYZ,;|"\u00e9\u00fc', max_size=12)
TIME_FORMATS = ['unix', 'unix.5', 'ms', 'iso', 'isoz', 'offset', 'dmy', 'mdy']
OFFSETS = ['+01:00', '-05:00', '+05:30', 'Z']

def fmt_time(t:int, kind:str, k:int) -> str:
    ts = pd.Timestamp(t, unit='s')
    if kind == 'unix': return str(t)
    if kind == 'unix.5': return f'{t}.5'
    if kind == 'ms': return str(t * 1000 + 250)
    if kind == 'iso': return ts.strftime('%Y-%m-%d %H:%M:%S')
    if kind == 'isoz': return ts.strftime('%Y-%m-%dT%H:%M:%SZ')
    if kind == 'offset':
        off = OFFSETS[k % len(OFFSETS)]
        if off == 'Z': return ts.strftime('%Y-%m-%dT%H:%M:%SZ')
        sign, hh, mm = (-1 if off[0] == '-' else 1), int(off[1:3]), int(off[4:6])
        return ts.tz_localize('UTC').tz_convert(datetime.timezone(sign * datetime.timedelta(hours=hh, minutes=mm))).isoformat()
    if kind == 'dmy': return ts.strftime('%d/%m/%Y %H:%M:%S')
    if kind == 'mdy': return ts.strftime('%m/%d/%Y %H:%M:%S')
    raise AssertionError(kind)

def order_is_knowable(times, kind) -> bool:
    "Whether d/m/y (or m/d/y) dates tell their order: some day above 12, or every day equal to its month."
    if kind not in ('dmy', 'mdy'): return True
    ds = [pd.Timestamp(t, unit='s') for t in times]
    return any(d.day > 12 for d in ds) or all(d.day == d.month for d in ds)

@st.composite
def tables(draw):
    n = draw(st.integers(1, 14))
    users = draw(st.lists(st.sampled_from(['u1', '01', '1', 'NA', 'b;c']), min_size=n, max_size=n))
    items = draw(st.lists(st.sampled_from(IDS), min_size=n, max_size=n))
    times = draw(st.lists(st.integers(1_500_000_000, 1_700_000_000), min_size=n, max_size=n))
    kind = draw(st.sampled_from(TIME_FORMATS))
    missing = (draw(st.lists(st.sampled_from([None, None, None, None, 'user', 'item', 'timestamp']), min_size=n, max_size=n))
               if draw(st.booleans()) else [None] * n)            # half the tables have no gaps at all
    catalogue = sorted(set(items)) + draw(st.lists(st.sampled_from(IDS), max_size=3, unique=True))
    catalogue = list(dict.fromkeys(catalogue))
    texts = draw(st.lists(TEXT, min_size=len(catalogue), max_size=len(catalogue)))
    return dict(users=users, items=items, times=times, kind=kind, missing=missing, catalogue=catalogue, texts=texts,
                sep=draw(st.sampled_from(SEPS)), encoding=draw(st.sampled_from(ENCODINGS)), cleaning=draw(st.booleans()))

def write(path, header, rows, sep, encoding):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, quoting=csv.QUOTE_MINIMAL, lineterminator='\n')
    w.writerow(header); w.writerows(rows)
    Path(path).write_bytes(buf.getvalue().encode(encoding))

def float_ids(t) -> bool:
    """Whether a file writes every id as an integral float ('12.0', as pandas writes an int column with a NaN): then
    12.0 is the number 12 in both files (the loader's rule); a column that mixes forms keeps '12.0' as written."""
    logged = [i for i, m in zip(t['items'], t['missing']) if m != 'item']
    return (bool(logged) and all(i == '12.0' for i in logged)) or all(c == '12.0' for c in t['catalogue'])

def canon(i, t): return '12' if i == '12.0' and float_ids(t) else i

def expected_log(t):
    "The rows a correct loader returns (missing rows dropped; with cleaning, exact repeats dropped), per user in time order."
    rows = [(u, canon(i, t), s) for u, i, s, m in zip(t['users'], t['items'], t['times'], t['missing']) if m is None]
    if t['cleaning']: rows = list(dict.fromkeys(rows))
    return rows

def by_user_time(rows):
    "Stable order by (user, time): ties keep the file's order, as the package promises."
    return sorted(rows, key=lambda r: (r[0], r[2]))

# Deterministic examples by default (a CI run must not fail on a draw no earlier run saw); HYPOTHESIS_EXPLORE=1 draws new ones.
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=not os.environ.get('HYPOTHESIS_EXPLORE'))
@given(tables())
def test_load_table_loads_what_was_written_or_raises_data_error(t):
    with tempfile.TemporaryDirectory() as d:
        log, its = Path(d) / 'log.csv', Path(d) / 'items.csv'
        rows = [['' if m == 'user' else u, '' if m == 'item' else i, '' if m == 'timestamp' else fmt_time(s, t['kind'], k)]
                for k, (u, i, s, m) in enumerate(zip(t['users'], t['items'], t['times'], t['missing']))]
        write(log, ['user', 'item', 'timestamp'], rows, t['sep'], t['encoding'])
        write(its, ['item', 'text'], list(zip(t['catalogue'], t['texts'])), t['sep'], t['encoding'])
        present = [s for s, m in zip(t['times'], t['missing']) if m != 'timestamp']
        must_fail = (any(m is not None for m in t['missing']) and not t['cleaning']) or not order_is_knowable(present, t['kind'])
        try:
            with _quiet():
                inter, items = load_table(log, items_path=its, sep=t['sep'], encoding=t['encoding'], cleaning=t['cleaning'])
        except DataError as e:
            assert str(log) in str(e) or str(its) in str(e), f'the message does not name the file: {e}'
            if not must_fail:
                exp = expected_log(t)
                # an all-missing log may be refused as empty; anything else that is well-formed must load
                assert not exp, f'a well-formed file was refused: {e}\n{t}'
            return
        assert not must_fail, f'loaded although it should have been refused: {t}'
        exp = expected_log(t)
        got = list(zip(inter['user'], inter['item'], inter['timestamp'].astype(int)))
        assert by_user_time(got) == by_user_time(exp), (t, got, exp)
        assert inter['timestamp'].dtype == np.int64
        text, first = dict(zip(items['item'], items['text'])), {}
        for i, x in zip(t['catalogue'], t['texts']): first.setdefault(canon(i, t), x)   # repeated ids: first row kept
        for i, x in first.items():
            if i in set(inter['item']): assert text[i] == (x.strip() or f'item {i}'), (i, x, text[i])

@contextlib.contextmanager
def _quiet():
    "The loader's notes (units converted, time zones) are warnings: expected here, not errors."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); yield
