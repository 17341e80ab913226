const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const tree = StandardMerkleTree.of(input, ["address", "uint256"]);
const proofs = {};
for (const [i, v] of tree.entries()) proofs[v[0]] = tree.getProof(i);
console.log(JSON.stringify({ root: tree.root, proofs }));
