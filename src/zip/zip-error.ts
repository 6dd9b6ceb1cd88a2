import { NvcfError } from '../shared/errors.js';

/**
 * The archive cannot be written as asked (an entry name too long, a file that grew past what was
 * announced, a writer already broken or ended). Writing the same archive again on the same
 * writer fails the same way; whoever builds the archive decides whether to start a new one.
 */
export class ZipError extends NvcfError {
  override name = 'ZipError';
  readonly retry = 'give-up';
}
