"""The house rules, checked: where each idea lives, which way imports point, and how the code reads.

The layers, bottom to top, are listed in HOUSE (the notebook numbers follow it). A module may import only modules
below it; the applications (case study, analysis, tracker) only the data, model and evaluation layers; the
service and the command line sit on top. Library code
keeps to the line lengths of the anchors in shared/STYLE.md (nanoGPT, fastcore, RecBole): under 5% of lines over
100 characters and none over 120 outside URLs, no statements joined with `;`, no module over 600 lines, and no
notebook code cell over 40 lines.
"""
import ast, io, json, re, tokenize
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
LIB, NBS = REPO / 'interest_llm', REPO / 'nbs'

HOUSE = ['core',                                            # utilities
         'data', 'cleaning', 'simulate', 'download', 'datasets',  # data
         'llm', 'adapter',                                  # text features
         'maths', 'sequence', 'vae', 'losses', 'checkpoint',  # network parts
         'model',                                           # the interest model
         'metrics', 'evaluate',                             # evaluation
         'train', 'baselines', 'registry',                  # training and the models it trains
         'runs', 'pipeline', 'benchmark', 'scale', 'distributed',  # experiments
         'case_study', 'analysis', 'tracker',              # applications
         'store', 'serve',                                  # the real-time service
         'cli']                                             # the command line, over everything
APPLICATIONS = {'case_study', 'analysis', 'tracker'}   # the service (serve) may also read run folders
APP_MAY_USE = set(HOUSE[:HOUSE.index('evaluate') + 1])

def modules():
    return sorted(p for p in LIB.glob('*.py') if p.stem not in ('__init__', '_modidx'))

def package_imports(path):
    "(line, module, names) of every import of a package module in `path`, at any depth."
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: name = mod.split('.')[0] if mod else None
            elif mod.startswith('interest_llm.'): name = mod.split('.')[1]
            elif mod == 'interest_llm': name = None
            else: continue
            if name is None:   # `from . import x` / `from interest_llm import x`
                out += [(node.lineno, a.name, []) for a in node.names]
            else: out.append((node.lineno, name, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split('.')[1], []) for a in node.names if a.name.startswith('interest_llm.')]
    return out

def test_every_module_has_a_place_in_the_house():
    assert sorted(p.stem for p in modules()) == sorted(HOUSE)

def test_notebooks_are_named_as_their_modules():
    for nb in sorted(NBS.glob('[0-9]*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        exp = [l for c in cells if c['cell_type'] == 'code' for l in ''.join(c['source']).splitlines()
               if l.startswith('#| default_exp')]
        assert exp, f'{nb.name}: no `#| default_exp`'
        module = exp[0].split()[-1]
        assert nb.stem.split('_', 1)[1] == module, f'{nb.name} exports {module}: name one after the other'
        assert HOUSE.index(module) == int(nb.stem.split('_')[0]), f'{nb.name}: its number is not its place in HOUSE'

def test_imports_point_down():
    bad = []
    for p in modules():
        me = HOUSE.index(p.stem)
        for line, mod, names in package_imports(p):
            if mod not in HOUSE: continue
            if HOUSE.index(mod) >= me: bad.append(f'{p.name}:{line} imports {mod} (above or beside it)')
            elif p.stem in APPLICATIONS and mod not in APP_MAY_USE:
                bad.append(f'{p.name}:{line} imports {mod}: applications use data, models and evaluation only')
    assert not bad, '\n'.join(bad)

def test_no_private_names_across_modules():
    bad = [f'{p.name}:{line} imports {n} from {mod}' for p in modules() for line, mod, names in package_imports(p)
           for n in names if n.startswith('_') and not n.startswith('__')]
    assert not bad, '\n'.join(bad)

def test_no_module_over_600_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in modules()}
    assert max(sizes.values()) <= 600, {k: v for k, v in sizes.items() if v > 600}

def library_lines():
    "Non-blank library lines, without what nbdev generates (the module docstring, `__all__`)."
    return [(p.name, i + 1, l) for p in modules() for i, l in enumerate(p.read_text().splitlines())
            if l.strip() and not l.startswith('__all__') and not (i == 0 and l.startswith('"""'))]

def test_line_lengths():
    lines = library_lines()
    over_100 = [x for x in lines if len(x[2]) > 100]
    over_120 = [f'{n}:{i} ({len(l)})' for n, i, l in lines if len(l) > 120 and 'http' not in l]
    assert not over_120, 'lines over 120 characters:\n' + '\n'.join(over_120[:20])
    share = len(over_100) / len(lines)
    assert share <= 0.05, f'{share:.1%} of library lines are over 100 characters (at most 5%)'

def test_no_semicolon_joins():
    bad = []
    for p in modules():
        for tok in tokenize.generate_tokens(io.StringIO(p.read_text()).readline):
            if tok.type == tokenize.OP and tok.string == ';': bad.append(f'{p.name}:{tok.start[0]}')
    assert not bad, 'statements joined with `;`: ' + ', '.join(bad[:20])

def test_notebook_cells_at_most_40_lines():
    bad = [f"{nb.name} cell {i} ({len(''.join(c['source']).splitlines())} lines)"
           for nb in sorted(NBS.glob('*.ipynb')) for i, c in enumerate(json.loads(nb.read_text())['cells'])
           if c['cell_type'] == 'code' and len(''.join(c['source']).splitlines()) > 40]
    assert not bad, 'code cells over 40 lines: ' + ', '.join(bad)

def test_the_style_test_can_fail(tmp_path):
    "The checks above see what they look for: a joined statement, a long line, an upward import."
    src = 'from .cli import main\nfrom .data import _private\na = 1; b = 2\n' + 'x = "' + 'y' * 130 + '"\n'
    f = tmp_path / 'model.py'
    f.write_text(src)
    assert [m for _, m, _ in package_imports(f)] == ['cli', 'data']
    assert any(n.startswith('_') for _, _, names in package_imports(f) for n in names)
    toks = [t for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.string == ';']
    assert len(toks) == 1 and max(len(l) for l in src.splitlines()) > 120
