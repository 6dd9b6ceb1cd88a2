// The console page: functions and versions with live status, the selected version's deployment
// and instances, queue lengths, and the invoke form. Refreshed every 1.5 s from the API.
import { apiKey, getJson, setApiKey } from './api.js';
import { invoke } from './invoke.js';

const REFRESH_MS = 1500;
const $ = (id) => document.getElementById(id);
let selected;

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** The worker's health and metrics endpoints, as links (they listen on the gateway's machine). */
function workerPorts(instance) {
  const td = cell(instance.healthPort ? '' : '–', 'instance-ports');
  const links = [
    ['health', instance.healthPort, '/v1/health/ready'],
    ['metrics', instance.metricsPort, '/metrics'],
  ];
  for (const [label, port, path] of links) {
    if (!port) continue;
    const a = document.createElement('a');
    a.href = `http://${location.hostname}:${port}${path}`;
    a.textContent = `${label} :${port}`;
    if (td.childNodes.length > 0) td.append(' ');
    td.append(a);
  }
  return td;
}

async function versionDetails(fn) {
  const path = `${encodeURIComponent(fn.id)}/versions/${encodeURIComponent(fn.versionId)}`;
  const [deployment, queues] = await Promise.all([
    fn.status === 'INACTIVE' ? undefined : getJson(`/v2/nvcf/deployments/functions/${path}`).catch(() => undefined),
    getJson(`/v2/nvcf/queues/functions/${path}`).catch(() => undefined),
  ]);
  return { fn, deployment: deployment?.deployment, queueLength: queues?.queues?.[0]?.queueLength };
}

function renderFunctions(rows) {
  const body = $('functions').querySelector('tbody');
  body.replaceChildren(
    ...rows.map(({ fn, deployment, queueLength }) => {
      const tr = document.createElement('tr');
      tr.dataset.functionName = fn.name;
      tr.dataset.versionId = fn.versionId;
      if (fn.versionId === selected) tr.className = 'selected';
      const instances = deployment?.instances ?? [];
      const ready = instances.filter((i) => i.state === 'ready').length;
      tr.append(
        cell(fn.name),
        cell(fn.id),
        cell(fn.versionId),
        cell(fn.status, `status status-${fn.status}`),
        cell(deployment ? `${ready}/${instances.length} ready` : '–'),
        cell(queueLength ?? '–', 'queue'),
      );
      tr.addEventListener('click', () => {
        selected = fn.versionId;
        void refresh();
      });
      return tr;
    }),
  );
  $('no-functions').hidden = rows.length > 0;
}

function renderDeployment(row) {
  $('deployment').hidden = !row?.deployment;
  if (!row?.deployment) return;
  const { deployment } = row;
  $('deployment-name').textContent = `${row.fn.name} (${deployment.functionStatus})`;
  const error = deployment.healthInfo?.find((h) => h.error)?.error;
  $('deployment-error').hidden = !error;
  $('deployment-error').textContent = error ?? '';
  $('instances')
    .querySelector('tbody')
    .replaceChildren(
      ...deployment.instances.map((i) => {
        const tr = document.createElement('tr');
        tr.append(
          cell(i.index),
          cell(i.workerId ?? '–'),
          cell(i.state, 'instance-state'),
          cell(i.restarts),
          cell(i.containerPid ?? '–'),
          workerPorts(i),
          cell(i.lastError ?? ''),
        );
        return tr;
      }),
    );
}

function renderChoices(functions) {
  const select = $('invoke-function');
  const current = select.value;
  const byId = new Map(functions.map((f) => [f.id, f.name]));
  select.replaceChildren(
    ...[...byId].map(([id, name]) => {
      const option = document.createElement('option');
      option.value = id;
      option.textContent = `${name} (${id.slice(0, 8)})`;
      return option;
    }),
  );
  if (byId.has(current)) select.value = current;
}

async function refresh() {
  try {
    const { functions } = (await getJson('/v2/nvcf/functions')) ?? { functions: [] };
    const rows = await Promise.all(functions.map(versionDetails));
    renderFunctions(rows);
    renderDeployment(rows.find((r) => r.fn.versionId === selected) ?? rows.find((r) => r.deployment));
    renderChoices(functions);
    $('load-error').hidden = true;
    $('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $('load-error').hidden = false;
    $('load-error').textContent = err.message;
  }
}

function resetResult() {
  for (const id of ['result-request-id', 'result-status', 'result-percent']) $(id).textContent = '–';
  for (const id of ['result-partial', 'result-tokens', 'result-body']) $(id).textContent = '';
  $('result-progress').value = 0;
  $('result-zip').hidden = true;
}

const ui = {
  requestId: (id) => ($('result-request-id').textContent = id),
  status: (code, nvcfStatus) => ($('result-status').textContent = `${code}${nvcfStatus ? ` ${nvcfStatus}` : ''}`),
  progress: (percent, partial) => {
    $('result-progress').value = percent;
    $('result-percent').textContent = `${percent}%`;
    if (partial) $('result-partial').textContent = partial;
  },
  token: (data) => ($('result-tokens').textContent += `${data}\n`),
  answer: (text) => ($('result-body').textContent = text),
  zip: (url) => {
    $('result-zip').href = url;
    $('result-zip').hidden = false;
  },
  error: (message) => ($('result-body').textContent = `error: ${message}`),
};

$('invoke-form').addEventListener('submit', (event) => {
  event.preventDefault();
  resetResult();
  $('invoke-button').disabled = true;
  const request = {
    functionId: $('invoke-function').value,
    body: $('invoke-body').value,
    stream: $('invoke-stream').checked,
  };
  invoke(request, ui)
    .catch((err) => ui.error(err.message))
    .finally(() => ($('invoke-button').disabled = false));
});

$('api-key').value = apiKey();
$('api-key').addEventListener('change', () => {
  setApiKey($('api-key').value);
  void refresh();
});
void refresh();
setInterval(() => void refresh(), REFRESH_MS);
