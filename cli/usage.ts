/** A command-line usage error: the command prints it with a hint and exits with code 2. */
export class UsageError extends Error {}
