import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
export const FERRETDB_VERSION = 'v1.24.2';

const log = (msg: string) => process.stderr.write(`[servers] ${msg}\n`);

export function onPath(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, cmd);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

function goEnv(key: string): string {
  return execFileSync('go', ['env', key], { encoding: 'utf8' }).trim();
}

function ferretdbVersionOk(bin: string): boolean {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && r.stdout.includes(`version: ${FERRETDB_VERSION}`);
}

/**
 * FerretDB v1.24.2, built once into GOPATH/bin. `go install …@v1.24.2` cannot be used as is: the
 * proxy refuses the module's version list (which go install reads for deprecations) and the
 * module archive lacks build/version/version.txt, without which the binary panics at start. So we
 * download that exact version through the module proxy, add the version file and `go build` it.
 */
export function ensureFerretdb(): string {
  const onPathBin = onPath('ferretdb');
  if (onPathBin && ferretdbVersionOk(onPathBin)) return onPathBin;
  if (!onPath('go')) {
    throw new Error('neither mongod nor FerretDB is available and Go is not installed to build FerretDB; set MONGODB_URL or install Go');
  }
  const binDir = join(goEnv('GOPATH').split(delimiter)[0]!, 'bin');
  const bin = join(binDir, 'ferretdb');
  if (existsSync(bin) && ferretdbVersionOk(bin)) return bin;

  log(`building FerretDB ${FERRETDB_VERSION} (once; about two minutes)…`);
  const info = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], { encoding: 'utf8' }),
  ) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download failed: ${info.Error ?? 'no source directory'}`);
  const work = mkdtempSync(join(tmpdir(), 'ferretdb-build-'));
  try {
    const src = join(work, 'src');
    cpSync(info.Dir, src, { recursive: true });
    chmodSync(join(src, 'build', 'version'), 0o755);
    writeFileSync(join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    mkdirSync(binDir, { recursive: true });
    const out = join(work, 'ferretdb');
    const build = (extra: string[]) =>
      spawnSync('go', ['build', '-trimpath', ...extra, '-o', out, './cmd/ferretdb'], {
        cwd: src,
        stdio: 'inherit',
        env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
      }).status === 0;
    // Newer Go toolchains refuse some linkname uses of older dependencies; this flag lifts that.
    if (!build([]) && !build(['-ldflags=-checklinkname=0'])) throw new Error('go build of FerretDB failed (see output above)');
    renameSync(out, bin);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!ferretdbVersionOk(bin)) throw new Error(`built ${bin} but it does not report ${FERRETDB_VERSION}`);
  log(`FerretDB installed at ${bin}`);
  return bin;
}

/** A Debian package's program, installed with apt-get when it is missing and we are root; otherwise say how. */
function fromDebian(program: string, pkg: string, purpose: string): string {
  const found = onPath(program);
  if (found) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && onPath('apt-get')) {
    log(`installing ${pkg} from Debian packages (${purpose})…`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { stdio: 'inherit', env });
    const installed = onPath(program) ?? (existsSync(`/usr/bin/${program}`) ? `/usr/bin/${program}` : undefined);
    if (installed) return installed;
  }
  throw new Error(`${program} is not installed. Install it with: sudo apt-get install -y ${pkg}`);
}

export function ensureRedisServer(): string {
  return fromDebian('redis-server', 'redis-server', 'or set REDIS_URL');
}

/** Debian's Chromium, which the console's browser tests drive through playwright-core (its own browser download does not work offline). */
export function ensureChromium(): string {
  return fromDebian('chromium', 'chromium', 'for the console tests');
}

/**
 * promtool, to validate the Prometheus rules in the tests. Only this one static binary is needed, so
 * it is taken out of Debian's `prometheus` package (apt-get download + dpkg-deb): no server is
 * installed or started. Kept in the user's cache, so it is fetched once per machine.
 */
export function ensurePromtool(): string {
  const found = onPath('promtool');
  if (found) return found;
  const dir = join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'account-fleet', 'bin');
  const bin = join(dir, 'promtool');
  if (existsSync(bin)) return bin;
  if (!onPath('apt-get') || !onPath('dpkg-deb')) throw new Error('promtool is missing and cannot be fetched here: install Debian\'s prometheus package');
  log('fetching promtool from Debian\'s prometheus package…');
  const work = mkdtempSync(join(tmpdir(), 'promtool-'));
  try {
    const download = () => spawnSync('apt-get', ['download', 'prometheus'], { cwd: work, stdio: 'inherit' }).status === 0;
    if (!download()) {
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
      if (!download()) throw new Error('apt-get download prometheus failed');
    }
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'))!;
    if (spawnSync('dpkg-deb', ['-x', join(work, deb), join(work, 'x')], { stdio: 'inherit' }).status !== 0) throw new Error('dpkg-deb could not unpack the prometheus package');
    mkdirSync(dir, { recursive: true });
    renameSync(join(work, 'x', 'usr', 'bin', 'promtool'), bin);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}
