/**
 * Replays a Dockerfile without a container engine, for tests of what the image holds: each stage
 * is a folder, its base image this machine (the Dockerfile's `FROM` must name the Node major this
 * machine runs, on Debian), `COPY` takes the build context minus `.dockerignore`, `RUN` runs with
 * `sh -c` in the stage's working directory. Only the instructions the project's Dockerfile uses
 * are known; any other fails the replay, so the Dockerfile cannot silently outgrow the check.
 *
 *   const image = await replayDockerfile(repoRoot, scratchDir);
 *   image.root            // the last stage's filesystem (its `/app` is `${root}/app`)
 *   image.workdir, image.env, image.cmd, image.user
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ReplayedImage {
  /** The final stage's root folder. */
  root: string;
  /** Its working directory, as an absolute path inside the image (`/app`). */
  workdir: string;
  env: Record<string, string>;
  cmd: string[];
  user: string | undefined;
  /** Base image of every stage, e.g. `node:20-bookworm-slim`. */
  bases: string[];
}

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** The instructions of a Dockerfile: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (pending === '') start = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const whole = (pending + line).trim();
    pending = '';
    const [keyword = '', ...rest] = whole.split(/\s+/);
    out.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), line: start });
  });
  return out;
}

/** A `.dockerignore` as a predicate over context-relative paths (`**`, `*`, `?`; `!` not used here). */
export function dockerignore(text: string): (path: string) => boolean {
  const patterns = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (patterns.some((p) => p.startsWith('!'))) throw new Error('.dockerignore: ! patterns are not supported');
  const regexes = patterns.map((pattern) => {
    const source = posix
      .normalize(pattern)
      .replace(/^\/+/, '')
      .split('/')
      .map((segment) =>
        segment === '**'
          ? '(?:[^/]+/)*'
          : `${segment
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]')}/`,
      )
      .join('');
    // A pattern matches a path and everything under it.
    return new RegExp(`^${source.replace(/\/$/, '')}(?:/.*)?$`);
  });
  return (path) => regexes.some((regex) => regex.test(path));
}

/** A JSON-array (exec form) argument list, as CMD and ENTRYPOINT take them. */
function execForm(args: string, where: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`${where}: only the exec form ["…"] is supported`);
  return parsed;
}

export async function replayDockerfile(context: string, scratch: string): Promise<ReplayedImage> {
  const instructions = parseDockerfile(readFileSync(join(context, 'Dockerfile'), 'utf8'));
  const ignored = existsSync(join(context, '.dockerignore'))
    ? dockerignore(readFileSync(join(context, '.dockerignore'), 'utf8'))
    : () => false;
  interface Stage {
    root: string;
    workdir: string;
    env: Record<string, string>;
    base: string;
  }
  /** Finished stages by AS name and by index (`COPY --from=build`, `--from=0`, `FROM build`). */
  const stages = new Map<string, Stage>();
  const bases: string[] = [];
  let stage: (Stage & { names: string[] }) | undefined;
  let cmd: string[] = [];
  let user: string | undefined;
  const current = (where: string) => {
    if (stage === undefined) throw new Error(`${where}: before any FROM`);
    return stage;
  };
  const finish = () => {
    if (stage !== undefined)
      for (const name of stage.names) stages.set(name, { ...stage, env: { ...stage.env } });
  };

  /** Copies a context path, leaving out what .dockerignore names. */
  const copyFromContext = (source: string, target: string) => {
    const rel = posix.normalize(source).replace(/^\.?\/*/, '');
    const from = join(context, rel);
    if (!existsSync(from) || ignored(rel)) throw new Error(`COPY ${source}: not in the build context`);
    cpSync(from, target, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (path) => !ignored(relative(context, path).split('\\').join('/')),
    });
  };

  for (const { keyword, args, line } of instructions) {
    const where = `Dockerfile:${line} ${keyword}`;
    switch (keyword) {
      case 'FROM': {
        finish();
        const [base = '', as, name] = args.split(/\s+/);
        const index = String(bases.length);
        const names = [index, ...(as?.toUpperCase() === 'AS' && name !== undefined ? [name] : [])];
        const root = join(scratch, `stage-${index}`);
        const parent = stages.get(base);
        if (parent !== undefined) {
          // Built on an earlier stage: its files, working directory and ENV.
          cpSync(parent.root, root, { recursive: true, verbatimSymlinks: true });
          stage = { root, workdir: parent.workdir, env: { ...parent.env }, base: parent.base, names };
        } else {
          if (!/^node:(\d+)-bookworm(-slim)?$/.test(base))
            throw new Error(`${where}: only node:<major>-bookworm[-slim] bases can be replayed here`);
          const major = base.split(':')[1]?.split('-')[0];
          if (major !== process.versions.node.split('.')[0])
            throw new Error(
              `${where}: ${base} needs Node ${major}, this machine runs ${process.versions.node}`,
            );
          mkdirSync(root, { recursive: true });
          stage = { root, workdir: '/', env: {}, base, names };
        }
        bases.push(stage.base);
        cmd = [];
        user = undefined;
        break;
      }
      case 'WORKDIR': {
        const s = current(where);
        s.workdir = posix.resolve(s.workdir, args);
        mkdirSync(join(s.root, s.workdir), { recursive: true });
        break;
      }
      case 'ENV': {
        const [name, ...value] = args.includes('=') ? args.split('=') : args.split(/\s+/);
        if (name === undefined || name.includes(' ')) throw new Error(`${where}: one NAME=value per ENV`);
        current(where).env[name] = value.join('=');
        break;
      }
      case 'COPY': {
        const s = current(where);
        const words = args.split(/\s+/);
        const fromStage = words[0]?.startsWith('--from=')
          ? words.shift()?.slice('--from='.length)
          : undefined;
        if (words.some((w) => w.startsWith('--'))) throw new Error(`${where}: unsupported flag`);
        const dest = words.pop() ?? '';
        if (words.length === 0) throw new Error(`${where}: no source`);
        const target = join(s.root, posix.resolve(s.workdir, dest));
        const intoDir = dest.endsWith('/') || words.length > 1;
        const from = fromStage === undefined ? undefined : stages.get(fromStage);
        if (fromStage !== undefined && from === undefined) throw new Error(`${where}: no stage ${fromStage}`);
        for (const source of words) {
          const to = intoDir ? join(target, posix.basename(source)) : target;
          mkdirSync(dirname(to), { recursive: true });
          // A directory source copies its contents (Docker semantics), a file keeps its name.
          if (from === undefined) {
            copyFromContext(source, statSync(join(context, source)).isDirectory() ? target : to);
          } else {
            const path = join(from.root, posix.resolve(from.workdir, source));
            cpSync(path, statSync(path).isDirectory() ? target : to, {
              recursive: true,
              verbatimSymlinks: true,
            });
          }
        }
        break;
      }
      case 'RUN': {
        const s = current(where);
        // The shell form, as /bin/sh -c in the image; the machine's Node and npm stand in for the base's.
        await run('sh', ['-c', args], {
          cwd: join(s.root, s.workdir),
          env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...s.env },
          timeout: 15 * 60_000,
          maxBuffer: 64 * 1024 * 1024,
        }).catch((err: { stderr?: string }) => {
          throw new Error(`${where} failed: ${args}\n${err.stderr?.slice(-3_000) ?? String(err)}`);
        });
        break;
      }
      case 'USER':
        user = args;
        break;
      case 'CMD':
        cmd = execForm(args, where);
        break;
      default:
        throw new Error(`${where}: instruction not replayed by hack/testing/dockerfile-replay.ts`);
    }
  }
  const last = current('Dockerfile');
  return { root: last.root, workdir: last.workdir, env: last.env, cmd, user, bases };
}
