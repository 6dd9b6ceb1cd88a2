import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installed, only, parsePbtxt, readRepoFile, repoPath, type PbtxtMessage } from '../support/manifests.js';

/** Python writes no bytecode into the examples (py_compile's goes to a scratch folder). */
const python = (args: string[]) =>
  execFileSync('python3', args, {
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONPYCACHEPREFIX: join(tmpdir(), 'nvcf-examples-pycache') },
  });
/** Python starts slowly on a busy machine. */
const SLOW = 30_000;
const hasNumpy = installed('python3', ['-c', 'import numpy']);

/**
 * Runs a Triton Python-backend model's execute() on one request, in this machine's Python, with a
 * stand-in for the three pieces of `triton_python_backend_utils` the model uses. Prints the
 * outputs as JSON: {name: [utf-8 text, ...]}.
 */
const RUN_TRITON_MODEL = `
import importlib.util, json, sys, types
import numpy as np
pb = types.ModuleType("triton_python_backend_utils")
class Tensor:
    def __init__(self, name, array): self.name, self.array = name, np.asarray(array)
    def as_numpy(self): return self.array
class InferenceResponse:
    def __init__(self, output_tensors, error=None): self.output_tensors = output_tensors
pb.Tensor, pb.InferenceResponse = Tensor, InferenceResponse
pb.get_input_tensor_by_name = lambda request, name: request.inputs.get(name)
sys.modules["triton_python_backend_utils"] = pb
spec = importlib.util.spec_from_file_location("model", sys.argv[1])
model = importlib.util.module_from_spec(spec); spec.loader.exec_module(model)
class Request:
    def __init__(self, inputs, parameters): self.inputs, self._parameters = inputs, parameters
    def parameters(self): return self._parameters
request = Request({"INPUT0": Tensor("INPUT0", np.array([b"hello"], dtype=np.object_))}, sys.argv[2])
[response] = model.TritonPythonModel().execute([request])
print(json.dumps({t.name: [v.decode() for v in t.array.reshape(-1)] for t in response.output_tensors}))
`;

describe('the examples that cannot run here still hold together', () => {
  it('the Python examples compile', { timeout: SLOW }, () => {
    const files = [
      '02-progress/server.py',
      '03-triton/models/identity/1/model.py',
      '04-pytriton/server.py',
      '07-openai/client.py',
    ];
    python(['-m', 'py_compile', ...files.map((f) => repoPath(`examples/${f}`))]);
  });

  it('the echo container and the Triton run script parse', () => {
    execFileSync(process.execPath, ['--check', repoPath('examples/01-echo/server.mjs')]);
    execFileSync(process.execPath, ['--check', repoPath('examples/07-openai/client.mjs')]);
    execFileSync('sh', ['-n', repoPath('examples/03-triton/run.sh')]);
  });
});

describe('examples/03-triton', () => {
  const dir = 'examples/03-triton';
  const config = (): PbtxtMessage => parsePbtxt(readRepoFile(`${dir}/models/identity/config.pbtxt`));
  const names = (field: string) => (config()[field] as PbtxtMessage[]).map((t) => only<string>(t, 'name'));

  it('holds a model repository Triton can load: the model directory, its config and a version with model.py', () => {
    for (const path of ['models/identity/config.pbtxt', 'models/identity/1/model.py', 'request.json', 'run.sh'])
      expect(existsSync(repoPath(`${dir}/${path}`)), path).toBe(true);
    // Triton insists the directory and the configured name agree.
    expect(only(config(), 'name')).toBe('identity');
    expect(only(config(), 'backend')).toBe('python');
  });

  it('runs on CPU, and the run script neither asks for a GPU nor drops the header forwarding', () => {
    const groups = config().instance_group as PbtxtMessage[];
    expect(groups.map((g) => only(g, 'kind'))).toEqual(['KIND_CPU']);
    const script = readRepoFile(`${dir}/run.sh`);
    expect(script).not.toContain('--gpus');
    expect(script).toContain("--http-header-forward-pattern 'NVCF-.*'");
    expect(script).toContain('-v "$MODELS:/models:ro"');
  });

  it('has a sample request whose inputs are the inputs the config declares', () => {
    const request = JSON.parse(readRepoFile(`${dir}/request.json`)) as { inputs: { name: string }[] };
    expect(request.inputs.map((i) => i.name)).toEqual(names('input'));
    expect(names('output')).toEqual(['OUTPUT0', 'NVCF_HEADERS']);
    expect(readRepoFile(`${dir}/run.sh`)).toContain(`-d @${dir}/request.json`);
  });

  it.skipIf(!hasNumpy)('answers with the input and the NVCF-* headers the request carried', { timeout: SLOW }, () => {
    const parameters = JSON.stringify({ 'NVCF-REQID': 'r-1', 'nvcf-asset-dir': '/var/inf/a', other: 'x' });
    const outputs = JSON.parse(
      python(['-c', RUN_TRITON_MODEL, repoPath(`${dir}/models/identity/1/model.py`), parameters]),
    ) as Record<string, string[]>;
    expect(Object.keys(outputs)).toEqual(names('output'));
    expect(outputs.OUTPUT0).toEqual(['hello']);
    expect(JSON.parse(outputs.NVCF_HEADERS![0]!)).toEqual({ 'NVCF-ASSET-DIR': '/var/inf/a', 'NVCF-REQID': 'r-1' });
  });
});

describe('examples/04-pytriton', () => {
  const file = repoPath('examples/04-pytriton/server.py');

  it('binds an undecorated infer (decorated ones never see the headers) and forwards NVCF-* headers', () => {
    const source = readRepoFile('examples/04-pytriton/server.py');
    expect(source).not.toMatch(/^@/m);
    expect(source).toContain('infer_func=infer');
    expect(source).toContain('http_header_forward_pattern="NVCF-.*"');
  });

  it.skipIf(!hasNumpy)("reads each request's NVCF-* headers and answers every row", { timeout: SLOW }, () => {
    const run = `
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("server", sys.argv[1])
server = importlib.util.module_from_spec(spec); spec.loader.exec_module(server)
class Request(dict):
    def __init__(self, data, parameters): super().__init__(data); self.parameters = parameters
answers = server.infer([
    Request({"INPUT0": np.array([[b"a"], [b"b"]])}, {"NVCF-REQID": "r-1", "nvcf-function-id": "f"}),
    Request({"INPUT0": np.array([[b"c"]])}, {"unrelated": "1"}),
])
print(json.dumps([{k: [row[0].decode() for row in v] for k, v in a.items()} for a in answers]))
`;
    const answers = JSON.parse(python(['-c', run, file])) as Record<string, string[]>[];
    expect(answers).toHaveLength(2);
    expect(answers[0]!.OUTPUT0).toEqual(['a', 'b']);
    expect(answers[0]!.NVCF_HEADERS!.map((h) => JSON.parse(h))).toEqual([
      { 'NVCF-FUNCTION-ID': 'f', 'NVCF-REQID': 'r-1' },
      { 'NVCF-FUNCTION-ID': 'f', 'NVCF-REQID': 'r-1' },
    ]);
    expect(answers[1]!.NVCF_HEADERS!.map((h) => JSON.parse(h))).toEqual([{}]);
  });
});
