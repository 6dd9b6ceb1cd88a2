"""The OpenAI Python SDK calling the echo model through the gateway (`pip install openai`).

    python3 examples/07-openai/client.py

NVCF_GATEWAY_URL (default http://127.0.0.1:8090), NVCF_FUNCTION_ID (default: the id `dev` uses)
and NVCF_API_KEY (only if the gateway asks for one) say where to go.
"""
import os

from openai import OpenAI

gateway = os.environ.get("NVCF_GATEWAY_URL", "http://127.0.0.1:8090")
function_id = os.environ.get("NVCF_FUNCTION_ID", "de7e1000-0000-4000-8000-000000000001")

# Header routing works wherever the gateway is reachable; against NVCF itself the base URL is
# https://<function_id>.invocation.api.nvcf.nvidia.com/v1 and no header is needed.
client = OpenAI(
    api_key=os.environ.get("NVCF_API_KEY", "not-checked-without-GATEWAY_API_KEY"),
    base_url=f"{gateway}/v1",
    default_headers={"function-id": function_id},
)

print("models:", ", ".join(m.id for m in client.models.list().data))

completion = client.chat.completions.create(
    model="echo-1",
    messages=[{"role": "user", "content": "Hello through NVCF"}],
)
print("reply:", completion.choices[0].message.content)

stream = client.chat.completions.create(
    model="echo-1",
    messages=[{"role": "user", "content": "these words arrive one at a time"}],
    stream=True,
)
print("stream: ", end="", flush=True)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
