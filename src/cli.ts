import { EXIT, packageVersion } from './shared/command-line.js';

const USAGE = `usage: nvcf-sidecar <command> [options]

commands:
  worker    run the worker sidecar next to an inference container (configured by environment
            variables; see docs/configuration.md)
  gateway   run the NVCF-compatible invocation API over NATS (docs/harness.md)
  dev       NATS + gateway + one worker for a container on this machine; --demo brings its own
  invoke    call a function through a gateway: nvcf-sidecar invoke <functionId> -d '{...}'
  help      show this text; "help <command>" (or "<command> --help") shows that command's options

  --version  print the version
exit codes: 0 done, 1 failed while running, 2 bad arguments or configuration (nothing ran)
`;

type Command = (args: readonly string[], env: NodeJS.ProcessEnv) => Promise<number>;
/**
 * Each command's module is loaded only when it runs: a worker process holds no gateway, dev or
 * invoke code (about 7 MiB of its idle RSS, docs/performance.md).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  worker: async () => (await import('./worker/command.js')).runWorker,
  gateway: async () => (await import('./gateway/command.js')).runGateway,
  dev: async () => (await import('./dev/command.js')).runDev,
  invoke: async () => (await import('./invoke/command.js')).runInvoke,
};

/** Runs one subcommand and resolves with the process exit code. */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  if (command && Object.hasOwn(COMMANDS, command)) return (await COMMANDS[command]!())(rest, env);
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      if (rest[0] && Object.hasOwn(COMMANDS, rest[0])) return (await COMMANDS[rest[0]]!())(['--help'], env);
      process.stdout.write(USAGE);
      return EXIT.ok;
    case '--version':
    case '-v':
      process.stdout.write(`${packageVersion()}\n`);
      return EXIT.ok;
    default:
      process.stderr.write(`${command ? `unknown command "${command}"\n\n` : ''}${USAGE}`);
      return EXIT.badConfiguration;
  }
}
