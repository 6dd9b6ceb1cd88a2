import type { IncomingMessage, ServerResponse } from 'node:http';

export declare const MODEL_ID: string;
/** The request handler of the OpenAI-compatible echo container (server.mjs). */
export declare function openAiEcho(options?: {
  pace?: (index: number) => Promise<void>;
}): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
