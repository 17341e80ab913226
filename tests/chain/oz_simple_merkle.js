const { SimpleMerkleTree } = require("@openzeppelin/merkle-tree");
const leaves = JSON.parse(require("fs").readFileSync(0, "utf8"));
const tree = SimpleMerkleTree.of(leaves);
const proofs = {};
for (const [i, v] of tree.entries()) proofs[v] = tree.getProof(i);
console.log(JSON.stringify({ root: tree.root, proofs }));
