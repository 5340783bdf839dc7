"""Tests of interest_llm.download: MovieLens checksums (with a faked network) and safe archive extraction."""
import io, tarfile, zipfile
from pathlib import Path
import pytest
import interest_llm.download as DL
from interest_llm.download import *

def test_download_checks_md5(tmp_path, monkeypatch):
    def fake(url, dest, timeout=60):
        with zipfile.ZipFile(dest, 'w') as z: z.writestr('ml-100k/u.data', '1\t1\t1\t1\n')
    monkeypatch.setattr(DL, '_urlretrieve', fake)
    with pytest.raises(ValueError, match='MD5 differs'): download_movielens('ml-100k', cache=tmp_path)
    assert not (tmp_path / 'ml-100k.zip').exists()   # the bad file is removed
    with pytest.raises(ValueError, match='unknown MovieLens'): download_movielens('ml-2m', cache=tmp_path)

@pytest.mark.parametrize('name', ['../evil.txt', '/tmp/evil.txt', 'a/../../evil.txt'])
def test_safe_extract_refuses_zip_traversal(tmp_path, name):
    z = tmp_path / 'evil.zip'
    with zipfile.ZipFile(z, 'w') as f: f.writestr('fine.txt', 'ok'); f.writestr(name, 'bad')
    with pytest.raises(ValueError, match='unsafe archive member'): safe_extract(z, tmp_path / 'out')
    assert not (tmp_path / 'out' / 'fine.txt').exists()

@pytest.mark.parametrize('kind', ['dotdot', 'absolute', 'symlink'])
def test_safe_extract_refuses_tar(tmp_path, kind):
    t = tmp_path / 'evil.tar.gz'
    with tarfile.open(t, 'w:gz') as f:
        data = b'bad'
        info = tarfile.TarInfo({'dotdot': '../evil.txt', 'absolute': '/tmp/evil.txt', 'symlink': 'link'}[kind])
        if kind == 'symlink': info.type, info.linkname = tarfile.SYMTYPE, '/etc/passwd'; f.addfile(info)
        else: info.size = len(data); f.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match='unsafe archive member'): safe_extract(t, tmp_path / 'out')

def test_safe_extract_ok_tar(tmp_path):
    t = tmp_path / 'ok.tar'
    with tarfile.open(t, 'w') as f:
        info = tarfile.TarInfo('d/x.txt'); info.size = 2; f.addfile(info, io.BytesIO(b'hi'))
    assert (safe_extract(t, tmp_path / 'out') / 'd' / 'x.txt').read_text() == 'hi'
    (tmp_path / 'plain.txt').write_text('x')
    with pytest.raises(ValueError, match='not a zip or tar'): safe_extract(tmp_path / 'plain.txt', tmp_path / 'o2')

# ---------------------------------------------------------------- untrusted archives, no network, wrong checksum
def _zip_with(tmp_path, name, member, data=b'x', symlink_to=None):
    p = tmp_path / name
    with zipfile.ZipFile(p, 'w') as z:
        z.writestr('ok/readme.txt', b'fine')
        zi = zipfile.ZipInfo(member)
        if symlink_to is not None: zi.external_attr = (0o120777 << 16); data = symlink_to.encode()
        z.writestr(zi, data)
    return p

def _tar_with(tmp_path, name, member, kind='file', target=''):
    p = tmp_path / name
    with tarfile.open(p, 'w:gz') as t:
        ok = tarfile.TarInfo('ok/readme.txt'); ok.size = 4; t.addfile(ok, io.BytesIO(b'fine'))
        ti = tarfile.TarInfo(member)
        if kind == 'file': ti.size = 4; t.addfile(ti, io.BytesIO(b'evil'))
        else: ti.type = tarfile.SYMTYPE if kind == 'symlink' else tarfile.LNKTYPE; ti.linkname = target; t.addfile(ti)
    return p

@pytest.mark.parametrize('member', ['../evil.txt', 'ok/../../evil.txt', '/tmp/evil-abs.txt', 'C:/evil.txt'])
def test_safe_extract_refuses_traversal_zip_and_tar(tmp_path, member):
    dest = tmp_path / 'dest'
    for arch in (_zip_with(tmp_path, 'a.zip', member), _tar_with(tmp_path, 'a.tgz', member)):
        with pytest.raises(ValueError, match=r'unsafe archive member'): DL.safe_extract(arch, dest)
    assert not (tmp_path / 'evil.txt').exists() and not Path('/tmp/evil-abs.txt').exists()
    assert not (dest / 'ok' / 'readme.txt').exists(), 'nothing may be extracted from a malicious archive'

@pytest.mark.parametrize('kind', ['symlink', 'hardlink'])
def test_safe_extract_refuses_tar_links(tmp_path, kind):
    arch = _tar_with(tmp_path, 'l.tgz', 'ok/link', kind=kind, target='/etc/passwd')
    with pytest.raises(ValueError, match=r'unsafe archive member .*link'): DL.safe_extract(arch, tmp_path / 'dest')
    assert not (tmp_path / 'dest' / 'ok' / 'link').exists()

def test_safe_extract_zip_symlink_is_not_a_link(tmp_path):
    "zipfile never creates symlinks: a symlink entry must end up (at most) as a plain file inside dest."
    arch = _zip_with(tmp_path, 's.zip', 'ok/link', symlink_to='/etc/passwd')
    try: dest = DL.safe_extract(arch, tmp_path / 'dest')
    except ValueError as e: assert 'unsafe archive member' in str(e); return
    assert not (dest / 'ok' / 'link').is_symlink() and (dest / 'ok' / 'link').read_bytes() == b'/etc/passwd'

def test_safe_extract_extracts_good_archive_and_refuses_non_archive(tmp_path):
    good = tmp_path / 'g.zip'
    with zipfile.ZipFile(good, 'w') as z: z.writestr('d/u.data', b'1\t2\t3\t4\n')
    assert (DL.safe_extract(good, tmp_path / 'out') / 'd' / 'u.data').read_bytes() == b'1\t2\t3\t4\n'
    (tmp_path / 'x.zip').write_bytes(b'not an archive')
    with pytest.raises(ValueError, match='not a zip or tar archive'): DL.safe_extract(tmp_path / 'x.zip', tmp_path / 'o2')

def test_download_without_network_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.request, urllib.error
    def offline(*a, **k): raise urllib.error.URLError('no network')
    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    with pytest.raises(FileNotFoundError, match=r'could not be downloaded .*Download it by hand'):
        DL.download_movielens('ml-100k', cache=tmp_path)
    assert not list(tmp_path.glob('*.zip*')), 'no partial download may be left behind'

def test_download_with_wrong_checksum_is_refused(tmp_path):
    "A cached archive whose MD5 differs from GroupLens' published one is removed, never extracted."
    fake = tmp_path / 'ml-100k.zip'
    with zipfile.ZipFile(fake, 'w') as z: z.writestr('ml-100k/u.data', b'1\t2\t3\t4\n')
    with pytest.raises(ValueError, match='MD5 differs'): DL.download_movielens('ml-100k', cache=tmp_path)
    assert not fake.exists() and not (tmp_path / 'ml-100k').exists()
