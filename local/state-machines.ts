import './polyfills.js';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';

/** The workflow's state machines in aws-local-stepfunctions: from its start, and from a state (redrive). */
export interface WorkflowMachines {
  /** Runs the definition from its first state. */
  readonly main: StateMachine;
  /**
   * Runs the same definition from `state` (a redrive, from a checkpoint): one machine per state,
   * made on first use. Throws for a state the definition does not have.
   */
  from(state: string): StateMachine;
}

export function workflowMachines(definition: StateMachineDefinition): WorkflowMachines {
  // The engine annotates the definition it is given (e.g. QueryLanguage on each state): hand it a
  // copy. It is not validated again here: compiling the ASL validator's schemas takes about 0.3 s
  // per runner, and the definition is the synthesized one, which test/infra/stack.test.ts
  // validates with the same validator (and AWS validates on deploy).
  const main = new StateMachine(structuredClone(definition), {
    validationOptions: { noValidate: true },
  });
  // Redrives start from a Task state: the same definition with another StartAt, one per state.
  const redriveMachines = new Map<string, StateMachine>();
  return {
    main,
    from(state) {
      if (!definition.States[state]) throw new Error(`The workflow has no state "${state}" to redrive from`);
      let machine = redriveMachines.get(state);
      if (!machine) {
        machine = new StateMachine(
          { ...structuredClone(definition), StartAt: state },
          {
            validationOptions: { noValidate: true },
          },
        );
        redriveMachines.set(state, machine);
      }
      return machine;
    },
  };
}
