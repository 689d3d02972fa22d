/**
 * `npm run conformance [-- --hal <module>]…`: run the HAL conformance kit against the repository's HALs (mock,
 * simulated Ada) or against any HAL module given by path, in or out of this repository.
 *
 * Exit codes: 0 every check passed or was skipped; 1 a check failed; 2 bad arguments, a module that cannot be
 * loaded, or a fixture that cannot bring its device up.
 */
import { Command, CommanderError } from 'commander';
import { isVgpuError } from '../core/contracts/exceptions.js';
import { CHECKS } from './checks/index.js';
import { selectChecks } from './conformance-session.js';
import { describeError } from './describe.js';
import { formatHeader, formatResult, formatTotals } from './format-report.js';
import { builtinHalModulePaths, loadHalModule } from './load-hal-module.js';
import { runConformance, type ConformanceReport } from './run-conformance.js';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const program = new Command('conformance')
  .description('Run the HAL conformance kit: every check a GPU generation\'s HAL must pass (docs/vendor-guide.md).')
  .option('--hal <module>', 'a HAL conformance module (default export { name, createFixture }); repeatable. Default: the repository\'s HALs',
    (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--only <checks>', 'comma-separated check ids, areas or id prefixes (e.g. "memory,scrub.device-view")')
  .option('--list', 'list the checks and exit')
  .option('--json', 'print the reports as JSON instead of text')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

async function main(): Promise<number> {
  try {
    program.parse(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    throw e;
  }
  const o = program.opts<{ hal: string[]; only?: string; list?: boolean; json?: boolean }>();
  const only = (o.only ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (o.list === true) {
    for (const c of CHECKS) console.log(`${c.id.padEnd(40)} ${c.title}`);
    return 0;
  }
  try {
    selectChecks(only);
  } catch (e) {
    console.error(`conformance: ${describeError(e)}${isVgpuError(e) ? `\n  ${e.hint}` : ''}`);
    return EXIT_USAGE;
  }
  const paths = o.hal.length > 0 ? o.hal : builtinHalModulePaths();
  const reports: ConformanceReport[] = [];
  let usage = false;
  for (const spec of paths) {
    try {
      // `npm run` starts us in the package root; relative paths are the caller's (INIT_CWD is where npm was run).
      const { module, path } = await loadHalModule(spec, process.env['INIT_CWD'] ?? process.cwd());
      if (o.json !== true) console.log(formatHeader(module.name, path));
      const rep = await runConformance(module, { only, ...(o.json === true ? {} : { onResult: (r) => console.log(formatResult(r)) }) });
      reports.push(rep);
      if (o.json !== true) console.log(`${formatTotals(rep)}\n`);
    } catch (e) {
      usage = true;
      console.error(`conformance: ${describeError(e)}${isVgpuError(e) ? `\n  ${e.hint}` : ''}`);
    }
  }
  if (o.json === true) console.log(JSON.stringify(reports, null, 2));
  if (usage) return EXIT_USAGE;
  return reports.some((r) => r.failed > 0) ? EXIT_FAILED : 0;
}

process.exitCode = await main();
