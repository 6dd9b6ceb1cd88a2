import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

/** Parsed YAML, walked freely by the tests: the assertions are the shape checks. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

/** A path under the repository root. */
export const repoPath = (path: string) => new URL(`../../${path}`, import.meta.url).pathname;
export const readRepoFile = (path: string) => readFileSync(repoPath(path), 'utf8');

/** Every document of a YAML file, failing on the first syntax error (with its line). */
export function yamlDocuments(path: string): Record<string, Loose>[] {
  return parseAllDocuments(readRepoFile(path)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    return doc.toJS() as Record<string, Loose>;
  });
}

export type PbtxtValue = string | number | boolean | PbtxtMessage;
export interface PbtxtMessage {
  [field: string]: PbtxtValue[];
}

/**
 * Protocol-buffer text format (what Triton's config.pbtxt is written in), parsed without the
 * schema: every field maps to the list of its values, a nested message to an object. Enough to
 * prove the file is well formed and to read the names out of it.
 */
export function parsePbtxt(text: string): PbtxtMessage {
  const tokens = [
    ...text.replace(/#.*$/gm, '').matchAll(/"(?:[^"\\]|\\.)*"|[{}[\]:,]|[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?|\S/g),
  ].map((m) => m[0]);
  let at = 0;
  const next = () => {
    if (at >= tokens.length) throw new Error('config.pbtxt ends in the middle of a field');
    return tokens[at++]!;
  };
  const value = (): PbtxtValue => {
    const token = next();
    if (token === '{') return message('}');
    if (token.startsWith('"')) return JSON.parse(token) as string;
    if (/^-?\d/.test(token)) return Number(token);
    if (token === 'true' || token === 'false') return token === 'true';
    if (/^[A-Za-z_]/.test(token)) return token;
    throw new Error(`config.pbtxt: unexpected "${token}"`);
  };
  const message = (end: string | undefined): PbtxtMessage => {
    const fields: PbtxtMessage = {};
    while (end === undefined ? at < tokens.length : tokens[at] !== end) {
      const name = next();
      if (!/^[A-Za-z_]\w*$/.test(name)) throw new Error(`config.pbtxt: "${name}" is not a field name`);
      const values = (fields[name] ??= []);
      // The colon is optional before a message or a list of messages.
      if (tokens[at] === ':') at++;
      else if (tokens[at] !== '{' && tokens[at] !== '[') throw new Error(`config.pbtxt: "${name}" needs ":"`);
      if (tokens[at] === '[') {
        at++;
        while (tokens[at] !== ']') {
          values.push(value());
          if (tokens[at] === ',') at++;
          else if (tokens[at] !== ']') throw new Error(`config.pbtxt: "${name}" list needs "," or "]"`);
        }
        at++;
      } else values.push(value());
    }
    if (end !== undefined) next();
    return fields;
  };
  return message(undefined);
}

/** The one value of a field of a parsed message. */
export function only<T extends PbtxtValue>(message: PbtxtMessage, field: string): T {
  const values = message[field];
  if (values?.length !== 1) throw new Error(`expected one "${field}", found ${values?.length ?? 0}`);
  return values[0] as T;
}

/**
 * A compose file as Docker Compose resolves it (`docker compose config`, or the older
 * `docker-compose config`), with none of the file's variables set. Where neither is installed,
 * the YAML with `${VAR:-default}` resolved to its default, as Compose would.
 */
export function composeConfig(path: string): { config: Record<string, Loose>; resolvedBy: string } {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  for (const [command, prefix] of [
    ['docker', ['compose']],
    ['docker-compose', []],
  ] as const) {
    if (!installed(command, [...prefix, 'version'])) continue;
    const run = spawnSync(command, [...prefix, '-f', repoPath(path), 'config'], { env, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${command} ${prefix.join(' ')} config refused ${path}: ${run.stderr}`);
    return { config: parseYaml(run.stdout) as Record<string, Loose>, resolvedBy: command };
  }
  const text = readRepoFile(path).replace(
    /\$\{(\w+)(?::?-([^}]*))?\}/g,
    (_m, _name: string, fallback?: string) => fallback ?? '',
  );
  return { config: parseYaml(text) as Record<string, Loose>, resolvedBy: 'yaml' };
}

/** Whether a command can be run here (for checks that need a tool the machine may lack). */
export function installed(command: string, versionArgs: string[] = ['--version']): boolean {
  try {
    execFileSync(command, versionArgs, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
