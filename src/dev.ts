export async function runDev(_args: readonly string[], _env: NodeJS.ProcessEnv): Promise<number> {
  return 2;
}
