// Command-line options of the bench tools (`--flag value`): one reader, so
// every tool names itself, the flag and what it wanted when an option is
// wrong, and exits 2.

export interface OptionReader {
  /** The flag's value (the next argument). */
  value(): string;
  /** The value as a whole number >= 1. */
  whole(): number;
  /** The value, which must be one of `choices`. */
  choice<T extends string>(choices: readonly T[]): T;
}

/** Prints `tool: msg` and where the options are documented, and exits 2. */
export function usage(tool: string, msg: string): never {
  process.stderr.write(`bench:${tool}: ${msg}\nsee the top of bench/${tool}.ts for the options\n`);
  process.exit(2);
}

/** Calls `on` for each flag of `argv`; `on` returns false for a flag it does not know. */
export function readOptions(tool: string, argv: readonly string[], on: (flag: string, r: OptionReader) => boolean): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const r: OptionReader = {
      value: () => argv[++i] ?? usage(tool, `${flag} needs a value`),
      whole: () => {
        const v = Number(r.value());
        if (!Number.isInteger(v) || v < 1) usage(tool, `${flag} needs a whole number >= 1`);
        return v;
      },
      choice: <T extends string>(choices: readonly T[]): T => {
        const v = r.value();
        if (!choices.includes(v as T)) usage(tool, `${flag} is one of ${choices.join(', ')}`);
        return v as T;
      },
    };
    if (!on(flag, r)) usage(tool, `unknown option ${flag}`);
  }
}
