"""Prose quotes no number that its notebook does not compute or check.

In the chapters whose prose discusses measured results — evaluation, baselines, the model registry's comparison, the case study and interest analysis —
a number typed into a markdown cell goes stale as soon as the notebook is re-run with another model: the outputs
change, the prose does not, and nothing fails. The rule enforced here:

* a markdown cell may not contain a *result-like* number — a decimal with three or more digits (`0.1086`, `0.06`,
  `97.5`), an integer with a thousands separator (`2,500`) or an integer of five or more digits — unless the same
  value is a literal of a code cell of that notebook: a parameter the prose describes (`n=1000`) or a value an
  `assert` / `test_eq` / `test_close` checks (`test_eq(stats['items'], 2500)`); when the code changes, the test fails;
* measured results belong in *computed* prose: a code cell that builds the sentence or table from the results with an
  f-string and shows it with `IPython.display.Markdown` — it is re-computed on every run, so it cannot go stale.

Code spans (`` `...` ``) and link targets are not prose and are ignored; so are years (1900-2099) and numbers of
three digits or fewer without a decimal point (`HR@100`, `384-dimensional`).

The case study also names products and customers. There:

* a product name typed into prose — three or more words in capitals, as the catalogue writes them
  (`GLASS CHALICE BLUE SMALL`) — must be a string literal of a code cell (which looks it up or asserts it);
* each customer section (`### Customer ...`) holds no typed prose besides its heading: what it says about the
  customer is a computed Markdown output of one of its code cells, stored in the notebook.
Run: `pytest tests/test_prose_numbers.py -q`.
"""
import io, json, re, tokenize
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1]/'nbs'
CHECKED = ['01_data.ipynb', '06_llm.ipynb', '09_sequence.ipynb', '10_vae.ipynb', '15_evaluate.ipynb', '16_train.ipynb', '17_baselines.ipynb',
           '18_registry.ipynb', '24_case_study.ipynb', '25_analysis.ipynb',
           '26_tracker.ipynb']

_NUM = re.compile(r'(?<![\w.§@/-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d{5,})(?![\w.]*\d)')

def src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def prose(md):
    "Markdown without code spans, fenced code and link targets."
    md = re.sub(r'(?s)```.*?```', ' ', md)
    md = re.sub(r'`[^`\n]*`', ' ', md)
    return re.sub(r'\]\([^)]*\)', ']', md)

def quoted_numbers(md):
    "Result-like numbers of a markdown text: [(text, value)]."
    out = []
    for m in _NUM.finditer(prose(md)):
        t = m.group(1); v = float(t.replace(',', ''))
        digits = len(re.sub(r'\D', '', t))
        if '.' in t and digits < 3: continue
        if '.' not in t and ',' not in t and 1900 <= v <= 2099: continue
        out.append((t, v))
    return out

def code_tokens(nb, kind, skip_magics:bool=False):
    "The strings of the tokens of type `kind` in the notebook's code cells (cells that do not tokenize end early, as Python would)."
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        s = src(c)
        if skip_magics: s = '\n'.join(l for l in s.splitlines() if not l.lstrip().startswith(('%', '!')))
        try:
            for tok in tokenize.generate_tokens(io.StringIO(s).readline):
                if tok.type == kind: yield tok.string
        except (tokenize.TokenError, IndentationError, SyntaxError): pass

def code_literals(nb):
    "Every numeric literal of the notebook's code cells (directive lines and comments excluded), as floats."
    vals = set()
    for t in code_tokens(nb, tokenize.NUMBER, skip_magics=True):
        try: vals.add(float(t.replace('_', '')))
        except ValueError: pass
    return vals

def unaccounted(nb):
    "[(cell id, number)] typed into markdown cells without a matching code literal."
    lits = code_literals(nb)
    return [(c.get('id'), t) for c in nb['cells'] if c['cell_type'] == 'markdown'
            for t, v in quoted_numbers(src(c)) if not any(abs(v - x) <= 1e-12 * max(1, abs(v)) for x in lits)]

@pytest.mark.parametrize('name', CHECKED)
def test_prose_numbers_are_computed_or_checked(name):
    nb = json.loads((NBS/name).read_text(encoding='utf-8'))
    bad = unaccounted(nb)
    assert not bad, (f'{name}: numbers typed into prose that no code cell computes or checks (move them into a computed '
                     f'Markdown cell, or assert them): {bad}')

@pytest.mark.parametrize('name', CHECKED)
def test_computed_prose_is_stored(name):
    "A chapter that builds prose with Markdown(...) has that prose in its stored outputs (the notebook was run)."
    nb = json.loads((NBS/name).read_text(encoding='utf-8'))
    for c in nb['cells']:
        lines = [l for l in src(c).splitlines() if l.strip() and not l.lstrip().startswith('#')]
        if c['cell_type'] == 'code' and any(l.lstrip().startswith('Markdown(') for l in lines) and '#| slow' not in src(c):
            assert any('text/markdown' in o.get('data', {}) for o in c.get('outputs', [])), \
                f"{name}: cell {c.get('id')} computes prose but has no stored Markdown output (run the notebook)"

WALKTHROUGH = '24_case_study.ipynb'
_CAPS = re.compile(r"(?<![\w'&-])[A-Z0-9'&-]*[A-Z][A-Z0-9'&-]*(?:[ \t]+[A-Z0-9'&-]*[A-Z][A-Z0-9'&-]*){2,}(?![\w'&-])")

def product_names(md):
    "Phrases of three or more capitalised words in the prose of `md` (how the catalogue writes product names)."
    return [m.group(0) for m in _CAPS.finditer(prose(md))]

def string_literals(nb):
    "The string literals of the notebook's code cells."
    return list(code_tokens(nb, tokenize.STRING))

def unchecked_names(nb):
    "[(cell id, name)] product names typed into markdown cells that no code cell names."
    lits = string_literals(nb)
    return [(c.get('id'), n) for c in nb['cells'] if c['cell_type'] == 'markdown'
            for n in product_names(src(c)) if not any(n in l for l in lits)]

def customer_sections(nb):
    """{heading: [cells up to the next heading]} for the `### Customer ...` sections. A markdown cell is split at its
    heading lines: text before its first heading still belongs to the section in progress, text after a heading to
    the section that heading opens."""
    out, cur = {}, None
    for c in nb['cells']:
        if c['cell_type'] != 'markdown':
            if cur: out[cur].append(c)
            continue
        parts = re.split(r'(?m)^[ \t]*(#{1,6}[ \t].*)$', src(c))     # [text, heading, text, heading, text, ...]
        for k, part in enumerate(parts):
            if k % 2:
                m = re.match(r'###[ \t]+(Customer\b.*)', part.strip())
                cur = m.group(1).strip() if m else None
                if cur: out[cur] = []
            elif cur and part.strip(): out[cur].append({'cell_type': 'markdown', 'id': c.get('id'), 'source': part})
    return out

def test_case_study_names_only_checked_products():
    nb = json.loads((NBS/WALKTHROUGH).read_text(encoding='utf-8'))
    bad = unchecked_names(nb)
    assert not bad, f'{WALKTHROUGH}: product names typed into prose that no code cell looks up or asserts: {bad}'

def test_case_study_walkthrough_is_computed():
    "Every customer section says what it says through a stored, computed Markdown output, never typed prose."
    nb = json.loads((NBS/WALKTHROUGH).read_text(encoding='utf-8'))
    secs = customer_sections(nb)
    assert len(secs) >= 3, f'{WALKTHROUGH}: expected the customer sections A, B, C, found {list(secs)}'
    for head, cells in secs.items():
        typed = [c.get('id') for c in cells if c['cell_type'] == 'markdown' and prose(src(c)).strip()]
        assert not typed, f'{WALKTHROUGH}: {head}: typed prose in cells {typed}; build it with Markdown(...) from the outputs'
        computed = [c for c in cells if c['cell_type'] == 'code' and 'Markdown(' in src(c)
                    and any('text/markdown' in o.get('data', {}) for o in c.get('outputs', []))]
        assert computed, f'{WALKTHROUGH}: {head}: no computed Markdown output describes this customer'

def _nb(md, code):
    return {'cells': [{'cell_type': 'markdown', 'id': 'm', 'source': md}, {'cell_type': 'code', 'id': 'c', 'source': code}]}

def test_rule():
    "The rule itself: typed results fail, checked values and parameters pass, small constants and code spans are prose."
    assert unaccounted(_nb('NDCG@10 is 0.1086 against 0.0536.', 'x = 1')) == [('m', '0.1086'), ('m', '0.0536')]
    assert unaccounted(_nb('The catalogue has 2,500 products.', 'test_eq(n, 2500)')) == []
    assert unaccounted(_nb('The catalogue has 2,500 products.', 'test_eq(n, 2501)')) == [('m', '2,500')]
    assert unaccounted(_nb('a gain of 0.02 over 2000 users', 'g = .02')) == []
    assert unaccounted(_nb('97.5 and 541909 lines', '')) == [('m', '97.5'), ('m', '541909')]
    assert unaccounted(_nb('threshold 0.5, HR@100, 10%, Dec 2010, §4.3, CC BY 4.0, `lr=0.0035`, torch 2.13.0', '')) == []
    assert unaccounted(_nb('[a link](https://x.org/v1.234/page)', '')) == []

def test_names_rule():
    "Product names: typed ones fail unless a code cell names them; acronyms and short capital runs are not names."
    assert unchecked_names(_nb('the target was GLASS CHALICE BLUE SMALL.', 'x = 1')) == [('m', 'GLASS CHALICE BLUE SMALL')]
    assert unchecked_names(_nb("known as JUMBO BAG RED RETROSPOT", "assert 'JUMBO BAG RED RETROSPOT' in titles")) == []
    assert unchecked_names(_nb('HR@10, NDCG@10 and MRR; LSTM + VAE; CC BY 4.0; `RED RETROSPOT CAKE STAND`', '')) == []
    assert unchecked_names(_nb("bought 50'S CHRISTMAS GIFT BAG", '')) == [('m', "50'S CHRISTMAS GIFT BAG")]
    secs = customer_sections({'cells': [{'cell_type': 'markdown', 'source': '### Customer A'},
                                        {'cell_type': 'markdown', 'source': 'bought hand warmers'},
                                        {'cell_type': 'markdown', 'source': '## Next'}]})
    assert list(secs) == ['Customer A'] and len(secs['Customer A']) == 1
    secs = customer_sections({'cells': [{'cell_type': 'markdown', 'source': 'intro\n### Customer B'},
                                        {'cell_type': 'code', 'source': 'x'},
                                        {'cell_type': 'markdown', 'source': 'comment\n\n## 7. Next section'}]})
    assert list(secs) == ['Customer B'] and [c['source'] for c in secs['Customer B']] == ['x', 'comment\n\n']
