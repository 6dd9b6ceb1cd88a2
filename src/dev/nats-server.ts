import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NvcfError } from '../shared/errors.js';

/**
 * nats-server could not be started: no binary on PATH, or it exited before it was ready (its
 * stderr says why). Installing one, or pointing NATS_URL at a server, is the fix.
 */
export class NatsServerError extends NvcfError {
  override name = 'NatsServerError';
  readonly retry = 'give-up';
}

export interface NatsServerOptions {
  /** Port to bind; 0 asks the server to choose (read back from its ports file). */
  port?: number;
  /** Keep JetStream data here (kept across restarts); a temp dir by default. */
  storeDir?: string;
  binary?: string;
  /** max_payload in bytes, to test the framing at other limits. */
  maxPayload?: number;
  /**
   * Run in a process group of its own, so a Ctrl-C at the terminal (sent to the whole
   * foreground group) does not stop NATS before the worker has drained through it (`dev`).
   */
  ownProcessGroup?: boolean;
  /** The server's name; JetStream in a cluster needs each node named. */
  serverName?: string;
  /** Join a JetStream cluster: this node's route port and the route URLs of every node. */
  cluster?: { name: string; port: number; routes: readonly string[] };
  /** Serve the HTTP monitoring endpoints (/varz, /jsz…) on this port. */
  monitorPort?: number;
  /** Let in only clients that give this user and password. */
  auth?: { user: string; password: string };
}

/**
 * A private nats-server with JetStream on 127.0.0.1, for `nvcf-sidecar dev` and for tests
 * (which must never touch a shared server). Restartable on the same port and store, so a test
 * can take NATS away and bring it back.
 */
export class NatsServer {
  private child: ChildProcess | undefined;
  private port = 0;
  private storeDir = '';
  private workDir = '';

  private constructor(private readonly options: NatsServerOptions) {}

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options);
    server.workDir = await mkdtemp(join(tmpdir(), 'nvcf-nats-'));
    server.storeDir = options.storeDir ?? join(server.workDir, 'store');
    server.port = options.port ?? 0;
    try {
      await server.launch();
    } catch (err) {
      await rm(server.workDir, { recursive: true, force: true });
      throw err;
    }
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The HTTP monitoring endpoint, when `monitorPort` was given. */
  get monitorUrl(): string | undefined {
    return this.options.monitorPort ? `http://127.0.0.1:${this.options.monitorPort}` : undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Where JetStream keeps its data (removed by `dispose` unless the caller chose it). */
  get store(): string {
    return this.storeDir;
  }

  /**
   * For a process that must exit now (a second Ctrl-C): kills the server and removes what
   * `dispose` would have, synchronously, so it can run in a process 'exit' handler.
   */
  disposeNow(): void {
    if (this.child?.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    rmSync(this.workDir, { recursive: true, force: true, maxRetries: 5 });
  }

  private async launch(): Promise<void> {
    const portsDir = join(this.workDir, `ports-${Date.now()}`);
    const args = [
      '-js',
      '-a',
      '127.0.0.1',
      '-p',
      String(this.port || -1),
      '-sd',
      this.storeDir,
      '--ports_file_dir',
      portsDir,
    ];
    if (this.options.maxPayload) args.push('--max_payload', String(this.options.maxPayload));
    if (this.options.serverName) args.push('--name', this.options.serverName);
    const cluster = this.options.cluster;
    if (cluster)
      args.push(
        '--cluster_name',
        cluster.name,
        '--cluster',
        `nats://127.0.0.1:${cluster.port}`,
        '--routes',
        cluster.routes.join(','),
      );
    if (this.options.monitorPort) args.push('-m', String(this.options.monitorPort));
    if (this.options.auth) args.push('--user', this.options.auth.user, '--pass', this.options.auth.password);
    await mkdir(portsDir, { recursive: true });
    const child = spawn(this.options.binary ?? 'nats-server', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: Boolean(this.options.ownProcessGroup),
    });
    this.child = child;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new NatsServerError(
                'nats-server is not on PATH: install it (Debian/Ubuntu: apt-get install nats-server; or download it from https://github.com/nats-io/nats-server/releases), or set NATS_URL to a server you run',
              )
            : new NatsServerError(`could not start nats-server: ${err.code ?? err.message}`, { cause: err }),
        ),
      ),
    );
    let gone = false;
    child.once('exit', () => (gone = true));
    child.once('error', () => (gone = true));
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) =>
        reject(new NatsServerError(`nats-server exited with ${code} before it was ready: ${stderr.trim()}`)),
      ),
    );
    const ready = (async () => {
      while (!gone) {
        const files = await readdir(portsDir).catch(() => [] as string[]);
        const file = files.find((f) => f.endsWith('.ports'));
        if (file) {
          const ports = JSON.parse(await readFile(join(portsDir, file), 'utf8')) as { nats: string[] };
          this.port = Number(new URL(ports.nats[0]!).port);
          return;
        }
        await sleep(20);
      }
    })();
    try {
      await Promise.race([ready, spawnError, exited]);
    } finally {
      exited.catch(() => undefined);
      spawnError.catch(() => undefined);
    }
  }

  /** Stops the server (SIGTERM, SIGKILL after 5 s); its store is kept for `restart`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child) await stopChild(this.child, 5_000, signal);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async dispose(): Promise<void> {
    await this.stop();
    // The store lives in the work dir unless the caller chose one, which is theirs to keep.
    await rm(this.workDir, { recursive: true, force: true });
  }
}

/** Asks a child process to stop, insists with SIGKILL after `graceMs`, and waits until it has. */
async function stopChild(child: ChildProcess, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}
