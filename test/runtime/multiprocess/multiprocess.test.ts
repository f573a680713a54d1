import { multiprocessCases } from './cases';

/** The multi-process cases (cases.ts) on SQLite files shared by the processes. */
multiprocessCases('sqlite');
