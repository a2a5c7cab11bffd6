/** The parsed form of a Go text/template (the subset Ollama's templates use). */

export type Node = TextNode | ActionNode | BranchNode | RangeNode | LoopControl;

export interface TextNode {
  type: 'text';
  text: string;
}

/** `{{ pipeline }}`: prints the value unless the pipeline declares or assigns a variable. */
export interface ActionNode {
  type: 'action';
  pipe: Pipe;
  line: number;
}

/** `if` and `with` (with also moves dot to the value). */
export interface BranchNode {
  type: 'if' | 'with';
  pipe: Pipe;
  body: Node[];
  else: Node[] | null;
  line: number;
}

/** `range` over a list, map or count; `$i, $v :=` names the index and element. */
export interface RangeNode {
  type: 'range';
  pipe: Pipe;
  body: Node[];
  else: Node[] | null;
  line: number;
}

export interface LoopControl {
  type: 'break' | 'continue';
  line: number;
}

/** `$a, $b := cmd | cmd ...` */
export interface Pipe {
  decl: string[];
  /** `=` rather than `:=`: assigns variables declared earlier. */
  assign: boolean;
  cmds: Operand[][];
}

export type Operand =
  | { kind: 'dot' }
  | { kind: 'field'; names: string[] }
  | { kind: 'var'; name: string; names: string[] }
  | { kind: 'literal'; value: string | number | boolean | null }
  | { kind: 'func'; name: string }
  | { kind: 'sub'; pipe: Pipe; names: string[] };
