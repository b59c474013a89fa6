// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDistributionManager} from "./interfaces/IDistributionManager.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IPayerReportManager} from "./interfaces/IPayerReportManager.sol";
import {FeeToken} from "./FeeToken.sol";

/// Fees owed to nodes. Each settled report's fees are split equally among its nodeIds; the
/// division's remainder becomes protocol fees when the report is first claimed, so every unit
/// of feesSettled ends up either owed to a node or in protocolFees, none lost.
contract DistributionManager is IDistributionManager {
    INodeRegistry public immutable nodeRegistry;
    IPayerReportManager public immutable payerReportManager;
    address public immutable token;

    mapping(uint32 => uint256) private _owed;
    /// nodeId => originatorNodeId => payerReportIndex => claimed
    mapping(uint32 => mapping(uint32 => mapping(uint256 => bool))) public hasClaimed;
    /// originatorNodeId => payerReportIndex => remainder already counted in protocolFees
    mapping(uint32 => mapping(uint256 => bool)) public remainderTaken;

    uint256 public totalOwedFees;
    uint256 public protocolFees;
    uint256 public totalWithdrawn;

    error ZeroAddress();
    error NotNodeOwner(address caller, uint32 nodeId);
    error ArrayLengthMismatch(uint256 originatorNodeIds, uint256 payerReportIndices);
    error NotSettled(uint32 originatorNodeId, uint256 payerReportIndex);
    error NotInPayerReport(uint32 nodeId, uint32 originatorNodeId, uint256 payerReportIndex);
    error AlreadyClaimed(uint32 nodeId, uint32 originatorNodeId, uint256 payerReportIndex);
    error InsufficientTokens(uint256 held, uint256 needed);
    error TransferFailed();

    constructor(address nodeRegistry_, address payerReportManager_, address token_) {
        if (nodeRegistry_ == address(0) || payerReportManager_ == address(0) || token_ == address(0)) {
            revert ZeroAddress();
        }
        nodeRegistry = INodeRegistry(nodeRegistry_);
        payerReportManager = IPayerReportManager(payerReportManager_);
        token = token_;
    }

    function claim(uint32 nodeId, uint32[] calldata originatorNodeIds, uint256[] calldata payerReportIndices)
        external
        returns (uint256 claimed)
    {
        _onlyOwner(nodeId);
        if (originatorNodeIds.length != payerReportIndices.length) {
            revert ArrayLengthMismatch(originatorNodeIds.length, payerReportIndices.length);
        }
        for (uint256 i; i < originatorNodeIds.length; ++i) {
            claimed += _claimOne(nodeId, originatorNodeIds[i], payerReportIndices[i]);
        }
        _owed[nodeId] += claimed;
        totalOwedFees += claimed;
    }

    function withdraw(uint32 nodeId) external returns (uint256 amount) {
        address owner = _onlyOwner(nodeId);
        amount = _owed[nodeId];
        if (amount == 0) return 0;
        uint256 held = FeeToken(token).balanceOf(address(this));
        if (held < amount) revert InsufficientTokens(held, amount);
        _owed[nodeId] = 0;
        totalOwedFees -= amount;
        totalWithdrawn += amount;
        if (!FeeToken(token).transfer(owner, amount)) revert TransferFailed();
        emit Withdrawn(nodeId, owner, amount);
    }

    function getOwedFees(uint32 nodeId) external view returns (uint256) {
        return _owed[nodeId];
    }

    function _claimOne(uint32 nodeId, uint32 originatorNodeId, uint256 index) private returns (uint256 share) {
        IPayerReportManager.PayerReport memory report = payerReportManager.getPayerReport(originatorNodeId, index);
        if (!report.isSettled) revert NotSettled(originatorNodeId, index);
        uint256 n = report.nodeIds.length;
        bool member;
        for (uint256 i; i < n; ++i) {
            if (report.nodeIds[i] == nodeId) {
                member = true;
                break;
            }
        }
        if (!member) revert NotInPayerReport(nodeId, originatorNodeId, index);
        if (hasClaimed[nodeId][originatorNodeId][index]) revert AlreadyClaimed(nodeId, originatorNodeId, index);
        hasClaimed[nodeId][originatorNodeId][index] = true;
        if (!remainderTaken[originatorNodeId][index]) {
            remainderTaken[originatorNodeId][index] = true;
            protocolFees += report.feesSettled % n;
        }
        share = report.feesSettled / n;
        emit Claimed(nodeId, originatorNodeId, index, share);
    }

    function _onlyOwner(uint32 nodeId) private view returns (address owner) {
        owner = nodeRegistry.getNode(nodeId).owner;
        if (msg.sender != owner) revert NotNodeOwner(msg.sender, nodeId);
    }
}
