/** A problem with what the user gave us (file, key, value): printed as one line, no stack, exit 1. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
